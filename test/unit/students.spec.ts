import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { selectBackend } from '../../core/backends/select.js';
import { bridgeTiny, buildBridgeTiny } from '../../core/models/bridge-tiny.js';
import { buildConvStudent } from '../../core/models/conv-student.js';
import { buildIResNet } from '../../core/models/iresnet.js';
import { buildMobileFaceNet } from '../../core/models/mobilefacenet.js';
import { buildTinyFar, makeDivisible, roundHalfEven, TINYNET_MULTIPLIERS, tinyfarOptions, tinynetBlocks } from '../../core/models/tinyfar.js';

const count = (ws: readonly tf.LayerVariable[]) => ws.reduce((n, w) => n + (w.shape as number[]).reduce((a, b) => a * b, 1), 0);

describe('student zoo: parameter counts', () => {
  it('conv-student default (64 px, widths 16-32-64-128, 128-D): 29,408 trainable', () => {
    // stem 3·3·3·16 + BN 2·16 = 464; per stage dw 9·cin + BN 2cin + pw cin·w + BN 2w:
    // 16→32: 752, 32→64: 2,528, 64→128: 9,152; dense 128·128 + 128 = 16,512.  Sum 29,408.
    const m = buildConvStudent({ inputSize: 64, widths: [16, 32, 64, 128], embeddingDim: 128 }, 0);
    expect(count(m.trainableWeights)).to.equal(29_408);
    m.dispose();
  });

  it('mobilefacenet at 112 px: 1,022,720 weights, 1,003,136 trainable (the backend-notes benchmark net)', () => {
    const m = buildMobileFaceNet({ inputSize: 112, width: 1, embeddingDim: 128 }, 0);
    expect(count(m.weights)).to.equal(1_022_720);
    expect(count(m.trainableWeights)).to.equal(1_003_136);
    expect(m.layers).to.have.length(147);
    expect(m.outputs[0]!.shape).to.deep.equal([null, 128]);
    m.dispose();
  });

  it('mobilefacenet at 32 px differs only in the GDConv kernel: 999,680 weights', () => {
    // GDConv is 512·k² weights with k = inputSize/16: (49 − 4)·512 = 23,040 fewer than at 112.
    const m = buildMobileFaceNet({ inputSize: 32, width: 1, embeddingDim: 128 }, 0);
    expect(count(m.weights)).to.equal(1_022_720 - 45 * 512);
    m.dispose();
  });

  it('the same seed builds the same weights; another seed does not', () => {
    const a = buildConvStudent({ inputSize: 32, widths: [8, 16], embeddingDim: 8 }, 3);
    const b = buildConvStudent({ inputSize: 32, widths: [8, 16], embeddingDim: 8 }, 3);
    const c = buildConvStudent({ inputSize: 32, widths: [8, 16], embeddingDim: 8 }, 4);
    const w = (m: tf.LayersModel) => Array.from(m.getWeights()[0]!.dataSync());
    expect(w(a)).to.deep.equal(w(b));
    expect(w(a)).to.not.deep.equal(w(c));
    [a, b, c].forEach((m) => m.dispose());
  });
});

// How "params" is counted below. Reference counts (strategy-specs §1.2, §2.2, §4.3) are
// PyTorch `parameters()`: conv/linear weights and biases, BN γ/β, PReLU slopes; BN running
// mean/var are buffers, not parameters. In tfjs the same BN running statistics are
// non-trainable *weights*, so `model.weights` = trainable + 2 × (BN channels). The numbers
// come from test/fixtures/student_param_counts.py (an independent count from the reference
// definitions), whose output is pasted here.
const byScope = (m: tf.LayersModel) => {
  const rows = new Map<string, number>();
  for (const w of m.trainableWeights) {
    const scope = w.originalName.split('/')[0]!.split('.')[0]!;
    rows.set(scope, (rows.get(scope) ?? 0) + (w.shape as number[]).reduce((a, b) => a * b, 1));
  }
  return [...rows.entries()];
};

describe('student zoo: iresnet', () => {
  const base = { width: 1, inputSize: 112, embeddingDim: 512, dropout: 0 } as const;
  // [depth, PyTorch parameters(), BN channels]
  const table = [[18, 24_025_600, 7_360], [34, 34_139_328, 12_928], [50, 43_590_848, 19_072], [100, 65_156_160, 34_816]] as const;
  for (const [depth, pytorch, bnChannels] of table) {
    it(`iresnet${depth}: ${pytorch.toLocaleString('en')} PyTorch parameters, 512 of them (the frozen feature γ) not trainable`, () => {
      const m = buildIResNet({ ...base, depth, featureScale: 'fixed' }, 0);
      // insightface/MST-KD freeze the final BatchNorm1d γ at 1 (requires_grad = False) but
      // parameters() still counts it; tfjs likewise keeps it as a non-trainable weight.
      expect(count(m.weights) - 2 * bnChannels).to.equal(pytorch);
      expect(count(m.trainableWeights)).to.equal(pytorch - 512);
      expect(m.outputs[0]!.shape).to.deep.equal([null, 512]);
      m.dispose();
    });
  }

  it('featureScale trainable: trainable tfjs weights equal the PyTorch count (iresnet18)', () => {
    const m = buildIResNet({ ...base, depth: 18, featureScale: 'trainable' }, 0);
    expect(count(m.trainableWeights)).to.equal(24_025_600);
    m.dispose();
  });

  it('width and input size scale the net: width 0.5 → 9,223,168; 64 px, 128-D → 12,227,968', () => {
    const a = buildIResNet({ ...base, depth: 18, width: 0.5, featureScale: 'trainable' }, 0);
    expect(count(a.trainableWeights)).to.equal(9_223_168);
    const b = buildIResNet({ ...base, depth: 18, inputSize: 64, embeddingDim: 128, featureScale: 'trainable' }, 0);
    expect(count(b.trainableWeights)).to.equal(12_227_968);
    [a, b].forEach((m) => m.dispose());
  });

  it('forward: [B, D] from a small iresnet18, dropout only in training', () => {
    const m = buildIResNet({ ...base, depth: 18, width: 0.125, inputSize: 32, embeddingDim: 16, dropout: 0.5, featureScale: 'fixed' }, 1);
    const x = tf.randomUniform([2, 32, 32, 3], -1, 1, 'float32', 5);
    const a = m.apply(x, { training: false }) as tf.Tensor;
    const b = m.apply(x, { training: false }) as tf.Tensor;
    const c = m.apply(x, { training: true }) as tf.Tensor;
    const d = m.apply(x, { training: true }) as tf.Tensor;
    expect(a.shape).to.deep.equal([2, 16]);
    expect(tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]).to.equal(0);
    expect(tf.max(tf.abs(tf.sub(c, d))).dataSync()[0]).to.be.above(0); // two dropout masks
    tf.dispose([x, a, b, c, d]);
    m.dispose();
  });
});

describe('student zoo: tinyfar (timm tinynet_a/b/c + Linear 1280→512)', () => {
  it('timm rounding: make_divisible and Python round', () => {
    // make_divisible(v) = max(8, int(v + 4) // 8 * 8), +8 if that is < 0.9 v.
    expect(makeDivisible(16 * 0.54)).to.equal(8); // 8.64 → 8
    expect(makeDivisible(40 * 0.75)).to.equal(32); // 30 → int(34)//8*8 = 32
    expect(makeDivisible(112 * 0.75)).to.equal(88); // 84 → int(88)//8*8 = 88
    expect(makeDivisible(320 * 0.54)).to.equal(176); // 172.8 → int(176.8)//8*8 = 176
    expect(makeDivisible(12)).to.equal(16); // int(16)//8*8 = 16 (halves round up)
    expect(makeDivisible(17)).to.equal(16); // int(21)//8*8 = 16 ≥ 0.9·17 = 15.3
    expect(makeDivisible(19)).to.equal(24); // int(23)//8*8 = 16 < 0.9·19 = 17.1 → +8
    expect([0.5, 1.5, 2.5, 3.6, 4.4].map(roundHalfEven)).to.deep.equal([0, 2, 2, 4, 4]);
  });

  // Block output channels from the python count (one entry per block).
  const blocks = {
    a: [16, 24, 24, 40, 40, 80, 80, 80, 80, 112, 112, 112, 112, 192, 192, 192, 192, 192, 320],
    b: [16, 24, 24, 32, 32, 64, 64, 64, 88, 88, 88, 144, 144, 144, 144, 240],
    c: [8, 16, 16, 24, 24, 40, 40, 40, 64, 64, 64, 104, 104, 104, 176],
  } as const;
  const totals = { a: [5_562_844, 4_906_972], b: [3_105_434, 2_449_562], c: [1_832_106, 1_176_234] } as const;
  for (const size of ['a', 'b', 'c'] as const) {
    it(`tinyfar-${size}: ${totals[size][0].toLocaleString('en')} parameters, backbone ${totals[size][1].toLocaleString('en')} (strategy-specs §1.2)`, () => {
      const [w, d] = TINYNET_MULTIPLIERS[size];
      expect(tinynetBlocks(w, d).map((b) => b.cout)).to.deep.equal([...blocks[size]]);
      const m = buildTinyFar({ size, inputSize: 112, embeddingDim: 512, init: 'scratch' }, 0);
      expect(count(m.trainableWeights)).to.equal(totals[size][0]);
      const embedding = 1280 * 512 + 512;
      expect(count(m.trainableWeights) - embedding).to.equal(totals[size][1]);
      expect(m.outputs[0]!.shape).to.deep.equal([null, 512]);
      m.dispose();
    });
  }

  it('rejects ImageNet initialisation with a reason', () => {
    const r = tinyfarOptions.safeParse({ init: 'imagenet' });
    expect(r.success).to.equal(false);
    expect(r.error!.issues[0]!.message).to.contain('not available offline');
  });

  it('forward at 32 px: [B, 512]', () => {
    const m = buildTinyFar({ size: 'c', inputSize: 32, embeddingDim: 512, init: 'scratch' }, 0);
    const y = tf.tidy(() => m.apply(tf.randomUniform([2, 32, 32, 3], -1, 1, 'float32', 3), { training: false }) as tf.Tensor);
    expect(y.shape).to.deep.equal([2, 512]);
    expect(Array.from(y.dataSync()).every(Number.isFinite)).to.equal(true);
    y.dispose();
    m.dispose();
  });
});

describe('student zoo: bridge-tiny (BridgeNet-S)', () => {
  it('211,392 trainable parameters, per row as in the strategy-specs §4.3 table', () => {
    const m = buildBridgeTiny({ inputSize: 32, embeddingDim: 128 }, 0);
    expect(byScope(m)).to.deep.equal([
      ['stem', 960], ['dw', 384],
      ['bneck1', 6_176], ['bneck2', 10_752], ['bneck3', 12_320], ['bneck4', 55_296], ['bneck5', 22_592], ['bneck6', 39_936],
      ['conv', 25_344], ['gdc', 4_608], ['linear', 33_024],
    ]);
    expect(count(m.trainableWeights)).to.equal(211_392);
    expect(m.outputs[0]!.shape).to.deep.equal([null, 128]);
    m.dispose();
  });

  it('LayersStudent resizes 0..255 images to 32 px and returns [B, 128]', async () => {
    const s = await bridgeTiny.create({ inputSize: 32, embeddingDim: 128 }, { seed: 0 } as never);
    expect(s.contract).to.deep.include({ inputSize: [32, 32], colour: 'rgb', normalise: 'symmetric' });
    expect(s.paramCount).to.equal(211_392);
    const y = tf.tidy(() => s.forward(tf.fill([3, 112, 112, 3], 128) as tf.Tensor4D, false));
    expect(y.shape).to.deep.equal([3, 128]);
    y.dispose();
    s.dispose();
  });
});

const small = {
  iresnet: (seed: number) => buildIResNet({ depth: 18, width: 0.125, inputSize: 32, embeddingDim: 16, dropout: 0, featureScale: 'fixed' }, seed),
  tinyfar: (seed: number) => buildTinyFar({ size: 'c', inputSize: 32, embeddingDim: 16, init: 'scratch' }, seed),
  'bridge-tiny': (seed: number) => buildBridgeTiny({ inputSize: 32, embeddingDim: 128 }, seed),
};

describe('student zoo: seeds and serialisation', () => {
  const allWeights = (m: tf.LayersModel) => m.getWeights().flatMap((w) => Array.from(w.dataSync()));

  for (const [kind, build] of Object.entries(small)) {
    it(`${kind}: the same seed builds the same weights; another seed does not`, () => {
      const [a, b, c] = [build(7), build(7), build(8)];
      expect(allWeights(a)).to.deep.equal(allWeights(b));
      expect(allWeights(a)).to.not.deep.equal(allWeights(c));
      [a, b, c].forEach((m) => m.dispose());
    });

    it(`${kind}: survives a save/load round trip with the same outputs`, async () => {
      const m = build(3);
      let saved: tf.io.ModelArtifacts | undefined;
      await m.save(tf.io.withSaveHandler(async (a) => { saved = a; return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } }; }));
      const back = await tf.loadLayersModel(tf.io.fromMemory(saved!));
      const x = tf.randomUniform([2, 32, 32, 3], -1, 1, 'float32', 9);
      const [y1, y2] = [m.predict(x) as tf.Tensor, back.predict(x) as tf.Tensor];
      expect(tf.max(tf.abs(tf.sub(y1, y2))).dataSync()[0]).to.be.below(1e-5);
      tf.dispose([x, y1, y2]);
      m.dispose();
      back.dispose();
    });
  }
});

// Training runs on wasm, the project's training backend (with its gradient-kernel
// fallbacks); the pure-JS cpu backend needs ~10 s per bridge-tiny step.
describe('student zoo: training on wasm', () => {
  let prev = 'cpu';
  before(async () => { prev = tf.getBackend(); await selectBackend('wasm'); });
  after(async () => { await tf.setBackend(prev); });

  for (const [kind, build] of Object.entries(small)) {
    it(`${kind}: every trainable weight gets a finite, non-zero gradient`, () => {
      const m = build(0);
      const x = tf.randomUniform([2, 32, 32, 3], -1, 1, 'float32', 1);
      const vars = m.trainableWeights.map((w) => w.read() as tf.Variable);
      const dead = tf.tidy(() => {
        // Inference-mode BN: in training mode a β followed (through linear layers) by another
        // batch-statistics BN has a true gradient of zero.
        const t = tf.randomNormal([2, m.outputs[0]!.shape[1]!], 0, 1, 'float32', 4);
        const { grads } = tf.variableGrads(() => tf.losses.meanSquaredError(t, m.apply(x, { training: false }) as tf.Tensor) as tf.Scalar, vars);
        return m.trainableWeights.filter((w, i) => {
          const g = grads[vars[i]!.name]!.dataSync();
          return !g.every(Number.isFinite) || g.every((v) => v === 0);
        }).map((w) => w.originalName);
      });
      expect(dead).to.deep.equal([]);
      x.dispose();
      m.dispose();
    });
  }

  it('iresnet featureScale fixed: an optimiser step leaves the feature γ at 1 and moves β', () => {
    const m = small.iresnet(0);
    const bn = m.layers.at(-1)!;
    const [gamma, beta] = ['gamma', 'beta'].map((n) => bn.weights.find((w) => w.originalName.endsWith(`/${n}`))!);
    expect(m.trainableWeights).to.not.include(gamma);
    const opt: tf.Optimizer = tf.train.sgd(0.5);
    const vars = m.trainableWeights.map((w) => w.read() as tf.Variable);
    const x = tf.randomUniform([2, 32, 32, 3], -1, 1, 'float32', 1);
    const t = tf.randomNormal([2, 16], 0, 1, 'float32', 4);
    tf.tidy(() => opt.applyGradients(tf.variableGrads(() => tf.losses.meanSquaredError(t, m.apply(x, { training: true }) as tf.Tensor) as tf.Scalar, vars).grads));
    expect(Array.from(gamma!.read().dataSync())).to.deep.equal(new Array(16).fill(1));
    expect(Array.from(beta!.read().dataSync()).some((v) => v !== 0)).to.equal(true);
    tf.dispose([x, t]);
    opt.dispose();
    m.dispose();
  });

  it('bridge-tiny trains: the loss falls over a few Adam steps and the tensor count stays flat', () => {
    const m = buildBridgeTiny({ inputSize: 32, embeddingDim: 128 }, 0);
    const x = tf.randomUniform([4, 32, 32, 3], -1, 1, 'float32', 1);
    const target = tf.randomNormal([4, 128], 0, 1, 'float32', 2);
    const opt: tf.Optimizer = tf.train.adam(1e-2);
    const vars = m.trainableWeights.map((w) => w.read() as tf.Variable);
    const step = () => tf.tidy(() => {
      const { value, grads } = tf.variableGrads(() => tf.losses.meanSquaredError(target, m.apply(x, { training: true }) as tf.Tensor) as tf.Scalar, vars);
      opt.applyGradients(grads);
      return value.dataSync()[0]!;
    });
    const losses = [step()]; // the first step creates Adam's slots
    const after1 = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) losses.push(step());
    expect(tf.memory().numTensors).to.equal(after1);
    expect(losses.every(Number.isFinite)).to.equal(true);
    expect(losses.at(-1)!).to.be.below(losses[0]!);
    tf.dispose([x, target]);
    opt.dispose();
    m.dispose();
  });
});
