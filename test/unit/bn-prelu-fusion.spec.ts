import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { NATIVE_BACKEND } from '../../core/backends/native/backend.js';
import { BN_PRELU_TRAIN, BN_PRELU_TRAIN_GRAD } from '../../core/backends/native/kernels.js';
import { useNativeBackend } from '../helpers/native.js';
import { seeded } from '../helpers/seeded.js';

type T = tf.SymbolicTensor;

/**
 * conv → BN → PReLU, plus (`branch`) a second consumer of the BatchNorm output: a residual add of BN's output onto
 * the PReLU output, so BN's output needs its own gradient as well.
 */
function net(branch: boolean, seed: number): tf.LayersModel {
  const input = tf.input({ shape: [6, 6, 3] });
  const conv = tf.layers.conv2d({ filters: 8, kernelSize: 3, padding: 'same', useBias: false, kernelInitializer: tf.initializers.glorotNormal({ seed }) }).apply(input) as T;
  const bn = tf.layers.batchNormalization({ momentum: 0.9, epsilon: 1e-5, gammaInitializer: tf.initializers.randomUniform({ minval: 0.5, maxval: 1.5, seed: seed + 1 }),
    betaInitializer: tf.initializers.randomUniform({ minval: -0.5, maxval: 0.5, seed: seed + 2 }) }).apply(conv) as T;
  const act = tf.layers.prelu({ sharedAxes: [1, 2], alphaInitializer: tf.initializers.randomUniform({ minval: 0.1, maxval: 0.4, seed: seed + 3 }) }).apply(bn) as T;
  const out = branch ? tf.layers.add().apply([act, bn]) as T : act;
  const flat = tf.layers.flatten().apply(out) as T;
  return tf.model({ inputs: input, outputs: tf.layers.dense({ units: 4, kernelInitializer: tf.initializers.glorotNormal({ seed: seed + 4 }) }).apply(flat) as T });
}

/** Loss, gradients of every trainable weight, the kernels that ran. */
async function step(backend: string, branch: boolean) {
  expect(await tf.setBackend(backend)).to.equal(true);
  const m = net(branch, 7);
  const x = tf.tensor(seeded(4 * 6 * 6 * 3, 3), [4, 6, 6, 3]);
  let out: { loss: number; grads: Float32Array[] } | undefined;
  const prof = await tf.profile(() => {
    const { value, grads } = tf.variableGrads(() => tf.tidy(() => tf.sum(tf.square(m.apply(x, { training: true }) as tf.Tensor)) as tf.Scalar),
      m.trainableWeights.map((w) => w.read() as tf.Variable));
    out = { loss: value.dataSync()[0]!, grads: m.trainableWeights.map((w) => Float32Array.from(grads[(w.read() as tf.Variable).name]!.dataSync())) };
    tf.dispose([value, ...Object.values(grads)]);
  });
  tf.dispose(x);
  m.dispose();
  return { ...out!, kernels: new Set(prof.kernels.map((k) => k.name)) };
}

const relDiff = (a: Float32Array, b: Float32Array) => {
  const scale = b.reduce((s, v) => Math.max(s, Math.abs(v)), 0);
  return a.reduce((s, v, i) => Math.max(s, Math.abs(v - b[i]!)), 0) / (scale + 1e-12);
};

describe('fused BatchNorm + PReLU (cpu-native, training mode)', function () {
  this.timeout(60_000);
  useNativeBackend();

  for (const branch of [false, true]) {
    it(`${branch ? 'BN output also feeding a residual add' : 'conv → BN → PReLU'}: loss and every gradient (conv, γ, β, α, dense) match the cpu reference, through the fused op`, async () => {
      const got = await step(NATIVE_BACKEND, branch);
      const want = await step('cpu', branch);
      expect(got.kernels.has(BN_PRELU_TRAIN), 'fused forward ran').to.equal(true);
      expect(got.kernels.has(BN_PRELU_TRAIN_GRAD), 'fused gradient ran').to.equal(true);
      expect(want.kernels.has(BN_PRELU_TRAIN)).to.equal(false);
      expect(Math.abs(got.loss - want.loss)).to.be.below(1e-5 * want.loss);
      expect(got.grads.length).to.equal(6); // conv kernel, γ, β, α, dense kernel and bias
      got.grads.forEach((g, i) => expect(relDiff(g, want.grads[i]!), `gradient ${i}`).to.be.below(2e-5));
    });
  }

  it('leaves a BatchNorm output that is a model output as it is (a sub-model for intermediate features)', async () => {
    expect(await tf.setBackend(NATIVE_BACKEND)).to.equal(true);
    const m = net(false, 11);
    const bnLayer = m.layers.find((l) => l.getClassName() === 'BatchNormalization')!;
    const features = tf.model({ inputs: m.inputs, outputs: bnLayer.output as T });
    const x = tf.tensor(seeded(4 * 6 * 6 * 3, 4), [4, 6, 6, 3]);
    const [f, z] = tf.tidy(() => [features.apply(x, { training: true }) as tf.Tensor, m.apply(x, { training: true }) as tf.Tensor]);
    // Normalised with batch statistics: per channel mean β and std γ (up to ε), with negative values (PReLU not applied).
    const v = f.dataSync();
    expect(Math.min(...v)).to.be.below(-0.5);
    const gamma = (bnLayer.getWeights()[0]!).dataSync(), beta = (bnLayer.getWeights()[1]!).dataSync();
    for (let c = 0; c < 8; c++) {
      const col = Array.from(v).filter((_, i) => i % 8 === c);
      const mean = col.reduce((a, b) => a + b, 0) / col.length;
      const sd = Math.sqrt(col.reduce((a, b) => a + (b - mean) ** 2, 0) / col.length);
      expect(mean).to.be.closeTo(beta[c]!, 1e-4);
      expect(sd).to.be.closeTo(gamma[c]!, 1e-3);
    }
    tf.dispose([x, f, z]);
    m.dispose();
  });

  it('batch statistics in one pass stay exact for a far-off mean and an outlier first row (vs the two-pass reference)', async () => {
    // Channel c: mean 40 + c, std 0.5; the first image's first pixel is 200 standard deviations away.
    const n = 6 * 5 * 5, C = 16, noise = seeded(n * C, 21);
    const vals = new Float32Array(n * C).map((_, i) => 40 + (i % C) + 0.5 * noise[i]!);
    vals.fill(140, 0, C);
    const run = async (backend: string) => {
      expect(await tf.setBackend(backend)).to.equal(true);
      const input = tf.input({ shape: [5, 5, C] });
      const bnLayer = tf.layers.batchNormalization({ momentum: 0 }); // moving statistics = this batch's
      const m = tf.model({ inputs: input, outputs: bnLayer.apply(input) as T });
      const x = tf.tensor(vals, [6, 5, 5, C]);
      const y = m.apply(x, { training: true }) as tf.Tensor;
      const out = { y: Float32Array.from(y.dataSync()), mean: Float32Array.from(bnLayer.getWeights()[2]!.dataSync()), variance: Float32Array.from(bnLayer.getWeights()[3]!.dataSync()) };
      tf.dispose([x, y]);
      m.dispose();
      return out;
    };
    const got = await run(NATIVE_BACKEND), want = await run('cpu');
    expect(relDiff(got.mean, want.mean)).to.be.below(1e-6);
    got.variance.forEach((v, c) => expect(v, `variance ${c}`).to.be.closeTo(want.variance[c]!, 2e-4 * want.variance[c]!));
    expect(want.variance[0]).to.be.above(10); // the outlier is in the statistics
    expect(relDiff(got.y, want.y)).to.be.below(1e-4);
  });

  it('a BatchNorm output kept across an update of γ gets PReLU of itself, not a recomputation with the new γ', async () => {
    expect(await tf.setBackend(NATIVE_BACKEND)).to.equal(true);
    const bn = tf.layers.batchNormalization();
    const pr = tf.layers.prelu({ sharedAxes: [1, 2], alphaInitializer: tf.initializers.constant({ value: 0.25 }) });
    const x = tf.tensor(seeded(2 * 3 * 3 * 4, 8), [2, 3, 3, 4]);
    const y = bn.apply(x, { training: true }) as tf.Tensor;
    const fresh = pr.apply(y, { training: true }) as tf.Tensor;
    const want = tf.prelu(y, tf.fill([1, 1, 4], 0.25)); // the reference op on y itself
    expect(relDiff(fresh.dataSync() as Float32Array, want.dataSync() as Float32Array)).to.be.below(1e-6);
    const gamma = bn.getWeights()[0]!;
    bn.setWeights([tf.mul(gamma, 3), ...bn.getWeights().slice(1)]); // an optimiser step in between
    const later = pr.apply(y, { training: true }) as tf.Tensor;
    expect(relDiff(later.dataSync() as Float32Array, want.dataSync() as Float32Array)).to.be.below(1e-6);
    tf.dispose([x, y, fresh, want, later]);
    bn.dispose(); pr.dispose();
  });

  it('a BatchNorm output made outside a gradient scope is a constant inside it (no gradient into γ through the fused op)', async () => {
    expect(await tf.setBackend(NATIVE_BACKEND)).to.equal(true);
    const bn = tf.layers.batchNormalization();
    const pr = tf.layers.prelu({ sharedAxes: [1, 2], alphaInitializer: tf.initializers.constant({ value: 0.25 }) });
    const x = tf.tensor(seeded(2 * 3 * 3 * 4, 9), [2, 3, 3, 4]);
    const y = bn.apply(x, { training: true }) as tf.Tensor; // outside any tape
    pr.build(y.shape);
    const gamma = bn.trainableWeights[0]!.read() as tf.Variable, alpha = pr.trainableWeights[0]!.read() as tf.Variable;
    const { value, grads } = tf.variableGrads(() => tf.sum(pr.apply(y, { training: true }) as tf.Tensor) as tf.Scalar, [gamma, alpha]);
    expect(grads[gamma.name] ?? null, 'γ gets no gradient: y is a constant here').to.equal(null);
    // α's gradient is the reference one: sum of y over y ≤ 0, per channel.
    const yv = y.dataSync(), want = [0, 1, 2, 3].map((c) => Array.from(yv).filter((v, i) => i % 4 === c && v <= 0).reduce((a, b) => a + b, 0));
    Array.from(grads[alpha.name]!.dataSync()).forEach((g, c) => expect(g).to.be.closeTo(want[c]!, 1e-4));
    tf.dispose([x, y, value, ...Object.values(grads).filter((g): g is tf.Tensor => g != null)]);
    bn.dispose();
  });

  it('keeps the tensor count flat across training steps', async () => {
    expect(await tf.setBackend(NATIVE_BACKEND)).to.equal(true);
    const m = net(true, 13);
    const x = tf.tensor(seeded(4 * 6 * 6 * 3, 5), [4, 6, 6, 3]);
    const opt = tf.train.sgd(0.01);
    const once = () => {
      const { value, grads } = tf.variableGrads(() => tf.tidy(() => tf.sum(tf.square(m.apply(x, { training: true }) as tf.Tensor)) as tf.Scalar),
        m.trainableWeights.map((w) => w.read() as tf.Variable));
      opt.applyGradients(grads);
      tf.dispose([value, ...Object.values(grads)]);
    };
    once();
    const n = tf.memory().numTensors;
    for (let i = 0; i < 10; i++) once();
    expect(tf.memory().numTensors).to.equal(n);
    tf.dispose(x);
    opt.dispose();
    m.dispose();
  });
});
