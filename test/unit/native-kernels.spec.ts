import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { NATIVE_BACKEND, nativeKernelStats } from '../../core/backends/native/backend.js';
import { repeatsAlongLeadingAxes } from '../../core/backends/native/kernels.js';
import { buildMobileFaceNet } from '../../core/models/mobilefacenet.js';
import { compareWithCpu, ex, TOL, withGrads } from '../helpers/native-compare.js';
import { useNativeBackend } from '../helpers/native.js';
import { seeded } from '../helpers/seeded.js';

type Pad = 'same' | 'valid' | number | tf.backend_util.ExplicitPadding;
type Shape4 = [number, number, number, number];


const l2n = (t: tf.Tensor) => tf.div(t, tf.norm(t, 2, 1, true));

/** compareWithCpu with this file's argument order (tolerance before the kernels that must have run natively). */
const compare = (what: string, shapes: readonly (readonly number[])[], f: (...xs: tf.Tensor[]) => tf.Tensor | tf.Tensor[], tol = TOL, native: readonly string[] = []) =>
  compareWithCpu(what, shapes, f, native, tol);

const CONV_GRADS = [tf.Conv2D, tf.Conv2DBackpropInput, tf.Conv2DBackpropFilter];
const DW_GRADS = [tf.DepthwiseConv2dNative, tf.DepthwiseConv2dNativeBackpropInput, tf.DepthwiseConv2dNativeBackpropFilter];

interface ConvCase { readonly k: number; readonly s: number; readonly pad: Pad; readonly x: Shape4; readonly co: number }
const CONV_CASES: readonly ConvCase[] = [
  { k: 1, s: 1, pad: 'same', x: [2, 7, 6, 19], co: 37 },          // pointwise: GEMM path, ragged tiles
  { k: 1, s: 1, pad: 'valid', x: [3, 16, 16, 64], co: 48 },       // pointwise, M > threads x tile rows
  { k: 1, s: 2, pad: 'same', x: [2, 9, 9, 5], co: 6 },            // 1x1 stride 2: im2col path
  { k: 3, s: 2, pad: 'same', x: [2, 16, 16, 3], co: 16 },         // MobileFaceNet's stem
  { k: 3, s: 1, pad: 'valid', x: [2, 9, 7, 4], co: 3 },
  { k: 3, s: 2, pad: ex(1, 2, 2, 0), x: [2, 8, 7, 3], co: 4 },
  { k: 5, s: 2, pad: 2, x: [1, 11, 10, 6], co: 33 },
  { k: 7, s: 1, pad: 'same', x: [2, 8, 9, 2], co: 2 },
];

interface DwCase { readonly k: number; readonly s: number; readonly pad: Pad; readonly x: Shape4 }
const DW_CASES: readonly DwCase[] = [
  { k: 3, s: 1, pad: 'same', x: [2, 8, 8, 24] },
  { k: 3, s: 2, pad: 'same', x: [3, 9, 9, 17] },
  { k: 3, s: 2, pad: 'valid', x: [2, 10, 8, 5] },
  { k: 5, s: 1, pad: ex(2, 1, 0, 2), x: [1, 7, 7, 8] },
  { k: 7, s: 1, pad: 'valid', x: [4, 7, 7, 40] },                  // GDConv: one output pixel
  { k: 2, s: 2, pad: 1, x: [2, 6, 6, 3] },
  // 3x3 with channels a multiple of the vector width (16 or 8): the register-blocked kernels, borders and interiors.
  { k: 3, s: 1, pad: 'same', x: [2, 7, 9, 32] },
  { k: 3, s: 1, pad: 'valid', x: [1, 6, 5, 16] },
  { k: 3, s: 1, pad: ex(2, 0, 0, 1), x: [2, 5, 6, 16] },      // asymmetric: input gradient by the generic path
  { k: 3, s: 2, pad: 'same', x: [2, 8, 8, 48] },
  { k: 3, s: 2, pad: 'valid', x: [1, 9, 7, 16] },
  { k: 3, s: 1, pad: 1, x: [3, 2, 3, 32] },                    // image smaller than the filter
];

describe('cpu-native backend (native kernels vs the pure-JS cpu reference)', function () {
  this.timeout(300_000);
  useNativeBackend();

  it('keeps the broadcast rule it relies on', () => {
    expect(repeatsAlongLeadingAxes([5], [2, 3, 4, 5])).to.equal(true);
    expect(repeatsAlongLeadingAxes([1, 1, 4, 5], [2, 3, 4, 5])).to.equal(true);
    expect(repeatsAlongLeadingAxes([], [2, 3])).to.equal(true);
    expect(repeatsAlongLeadingAxes([2, 1, 1, 5], [2, 3, 4, 5])).to.equal(false);
    expect(repeatsAlongLeadingAxes([4, 1], [2, 3, 4, 5])).to.equal(false);
  });

  for (const c of CONV_CASES) {
    it(`conv2d ${c.k}x${c.k} s${c.s} pad=${JSON.stringify(c.pad)} x=${c.x} co=${c.co}: forward, dx, dW`, async () => {
      const w: Shape4 = [c.k, c.k, c.x[3], c.co];
      await compare('conv2d', [c.x, w], withGrads((x, f) => tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, c.s, c.pad)), TOL, CONV_GRADS);
      // The layers' path: FusedConv2D without bias or activation.
      await compare('fused conv2d', [c.x, w], withGrads((x, f) => tf.fused.conv2d({ x: x as tf.Tensor4D, filter: f as tf.Tensor4D, strides: c.s, pad: c.pad })),
        TOL, [tf.FusedConv2D, tf.Conv2DBackpropInput, tf.Conv2DBackpropFilter]);
    });
  }

  for (const c of DW_CASES) {
    it(`depthwiseConv2d ${c.k}x${c.k} s${c.s} pad=${JSON.stringify(c.pad)} x=${c.x}: forward, dx, dW`, async () => {
      await compare('depthwise', [c.x, [c.k, c.k, c.x[3], 1]], withGrads((x, f) => tf.depthwiseConv2d(x as tf.Tensor4D, f as tf.Tensor4D, c.s, c.pad)), TOL, DW_GRADS);
    });
  }

  it('falls back to the reference for what it does not handle (channel multiplier 2, dilation 2), and counts it', async () => {
    await compare('depthwise x2', [[2, 6, 6, 3], [3, 3, 3, 2]], withGrads((x, f) => tf.depthwiseConv2d(x as tf.Tensor4D, f as tf.Tensor4D, 1, 'same')));
    expect(nativeKernelStats().reasons.get(`${tf.DepthwiseConv2dNative}: with channel multiplier 2`)).to.equal(2); // y, and again under tf.grads
    await compare('dilated conv', [[1, 9, 9, 2], [3, 3, 2, 3]], (x, f) => tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, 1, 'same', 'NHWC', 2));
    expect(nativeKernelStats().fallback.get(tf.Conv2D)).to.equal(1);
  });

  // tfjs's own gradients of squaredDifference / maximum / minimum do not reduce broadcast operands (they throw on
  // cpu too), so those three are differentiated only where the shapes are equal.
  const BINARY: readonly [string, (a: tf.Tensor, b: tf.Tensor) => tf.Tensor, boolean, string][] = [
    ['add', tf.add, true, tf.Add], ['sub', tf.sub, true, tf.Sub], ['mul', tf.mul, true, tf.Multiply], ['div', (a, b) => tf.div(a, tf.add(tf.abs(b), 0.5)), true, tf.RealDiv],
    ['squaredDifference', tf.squaredDifference, false, tf.SquaredDifference], ['maximum', tf.maximum, false, tf.Maximum], ['minimum', tf.minimum, false, tf.Minimum],
  ];
  const PAIRS: readonly [number[], number[]][] = [
    [[2, 3, 4, 70], [2, 3, 4, 70]], [[2, 3, 4, 70], [70]], [[70], [2, 3, 4, 70]], [[2, 3, 4, 5], [1, 1, 4, 5]],
    [[2, 3, 4, 5], []], [[], [2, 3, 4, 5]], [[300, 400], [300, 400]], // large: the threaded loops
    [[2, 3, 4, 5], [2, 1, 1, 5]], // not a leading-axes broadcast: the general broadcasting loop
  ];
  for (const [name, op, broadcastGrads, kernelName] of BINARY) {
    it(`${name}: same shape, scalar and broadcast operands, with gradients`, async () => {
      for (const [a, b] of PAIRS) {
        const f = broadcastGrads || tf.util.arraysEqual(a, b) ? withGrads(op) : op;
        await compare(`${name} ${a} ${b}`, [a, b], f, TOL, [kernelName]);
      }
    });
  }

  it('greater, where, relu (NaN stays NaN), neg, square, sqrt, rsqrt', async () => {
    await compare('greater/where', [[4, 5, 6, 33], [33]], (a, b) => [tf.cast(tf.greater(a, b), 'float32'), tf.where(tf.greater(a, 0), a, tf.mul(a, 3))],
      TOL, [tf.Greater, tf.Select]);
    await compare('unary', [[300, 257]], (x) => {
      const withNaN = tf.where(tf.greater(x, 0.95), tf.fill(x.shape, NaN), x);
      return [tf.relu(withNaN), tf.neg(x), tf.square(x), tf.sqrt(tf.abs(x)), tf.rsqrt(tf.add(tf.abs(x), 0.1))];
    }, TOL, [tf.Relu, tf.Neg, tf.Square, tf.Sqrt, tf.Rsqrt]);
  });

  it('sum and mean over contiguous and non-contiguous axes, keepDims', async () => {
    const s: Shape4 = [3, 5, 7, 40];
    for (const axes of [[0, 1, 2], [3], [1, 2], [0], [0, 2], [0, 1, 2, 3]]) {
      for (const keepDims of [false, true]) {
        const contiguous = axes.every((a, i) => i === 0 || a === axes[i - 1]! + 1);
        await compare(`reduce ${axes} ${keepDims}`, [s], withGrads((x) => tf.add(tf.sum(x, axes, keepDims), tf.mul(tf.mean(x, axes, keepDims), 2))),
          TOL, contiguous ? [tf.Mean] : []);
      }
    }
    await compare('reduce large', [[64, 1000, 3]], (x) => [tf.sum(x, [0, 1]), tf.mean(x, 2), tf.sum(x)], 1e-5);
  });

  it('batchNorm (per-channel and scalar parameters): forward and the gradient of every input', async () => {
    for (const [x, p] of [[[4, 6, 5, 24], [24]], [[2, 3, 3, 7], [1]], [[200, 96], [96]]] as [number[], number[]][]) {
      // variance kept positive; offset and scale optional
      await compare(`batchNorm ${x}`, [x, p, p, p, p], withGrads((xx, m, v, o, sc) => tf.batchNorm(xx, m, tf.add(tf.abs(v), 0.1), o, sc, 1e-3)), 1e-4, [tf.FusedBatchNorm]);
      // without scale, tfjs's own gradient fails on cpu too: forward only
      await compare(`batchNorm ${x} no scale`, [x, p, p], (xx, m, v) => tf.batchNorm(xx, m, tf.add(tf.abs(v), 0.1), undefined, undefined, 1e-3), 1e-4);
    }
  });

  it('batchNorm in training mode, as tf.layers runs it (moments then FusedBatchNorm)', async () => {
    await compare('bn train', [[4, 6, 6, 16], [16], [16]], withGrads((x, g, b) => {
      const { mean, variance } = tf.moments(x, [0, 1, 2]);
      return tf.batchNorm(x, mean, variance, b, g, 1e-5);
    }), 1e-4);
  });

  it('prelu with per-channel and shared alpha: forward, dx, dAlpha', async () => {
    await compare('prelu', [[3, 6, 6, 20], [1, 1, 20]], withGrads(tf.prelu as (x: tf.Tensor, a: tf.Tensor) => tf.Tensor), TOL, [tf.Prelu]);
    await compare('prelu shared', [[3, 6, 6, 20], [1]], withGrads(tf.prelu as (x: tf.Tensor, a: tf.Tensor) => tf.Tensor));
    await compare('prelu 2-D alpha', [[3, 6, 6, 20], [6, 20]], withGrads(tf.prelu as (x: tf.Tensor, a: tf.Tensor) => tf.Tensor));
  });

  it('a MobileFaceNet (32 px) training step: loss, every weight gradient and the BatchNorm moving statistics match the reference', async () => {
    const step = async (backend: string) => {
      await tf.setBackend(backend);
      const m = buildMobileFaceNet({ inputSize: 32, width: 0.5, embeddingDim: 16 }, 3);
      const x = tf.tensor(seeded(3 * 32 * 32 * 3, 5), [3, 32, 32, 3]);
      const t = tf.tidy(() => l2n(tf.tensor(seeded(3 * 16, 6), [3, 16])));
      const { value, grads } = tf.variableGrads(() => tf.tidy(() => {
        const y = l2n(m.apply(x, { training: true }) as tf.Tensor);
        return tf.mean(tf.squaredDifference(y, t)) as tf.Scalar;
      }), m.trainableWeights.map((w) => w.read() as tf.Variable));
      const out = {
        loss: value.dataSync()[0]!, grads: Object.values(grads).map((g) => Float32Array.from(g.dataSync())),
        moving: m.nonTrainableWeights.map((w) => Float32Array.from(w.read().dataSync())), // BatchNorm moving mean / variance
      };
      tf.dispose([value, x, t, ...Object.values(grads)]);
      m.dispose();
      return out;
    };
    const got = await step(NATIVE_BACKEND);
    const want = await step('cpu');
    expect(Math.abs(got.loss - want.loss)).to.be.below(1e-5 * want.loss);
    expect(got.grads.length).to.equal(want.grads.length);
    expect(got.moving.length).to.equal(want.moving.length).and.to.be.above(0);
    // Per tensor: 1e-3 of its own scale, plus a small share of the largest value for the quantities whose exact value
    // is 0 and where both backends return float noise (~1e-9): the gradients of BatchNorm offsets that feed another
    // training-mode BatchNorm, and the moving means of BatchNorms whose input is a linear map of a normalised batch.
    const amax = (a: Float32Array) => a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, j) => Math.max(m, Math.abs(v - b[j]!)), 0);
    const movingMax = Math.max(...want.moving.map(amax));
    got.moving.forEach((v, i) => expect(maxDiff(v, want.moving[i]!), `moving statistic ${i}`).to.be.below(1e-4 * amax(want.moving[i]!) + 1e-6 * movingMax));
    const global = Math.max(...want.grads.map(amax));
    got.grads.forEach((g, i) => {
      const w = want.grads[i]!;
      const diff = g.reduce((m, v, j) => Math.max(m, Math.abs(v - w[j]!)), 0);
      expect(diff, `gradient ${i}`).to.be.below(1e-3 * amax(w) + 1e-4 * global);
    });
  });

  it('repeats itself bit for bit: a MobileFaceNet step\'s gradients and BatchNorm statistics are the same on every run (threaded sums are grouped, not per thread)', async () => {
    await tf.setBackend(NATIVE_BACKEND);
    const m = buildMobileFaceNet({ inputSize: 32, width: 0.5, embeddingDim: 16 }, 5);
    const x = tf.tensor(seeded(8 * 32 * 32 * 3, 15), [8, 32, 32, 3]);
    const vars = m.trainableWeights.map((w) => w.read() as tf.Variable);
    const once = () => {
      const { value, grads } = tf.variableGrads(() => tf.tidy(() => tf.sum(tf.square(m.apply(x, { training: true }) as tf.Tensor)) as tf.Scalar), vars);
      const out = [value.dataSync()[0]!, ...vars.flatMap((v) => Array.from(grads[v.name]!.dataSync()))];
      tf.dispose([value, ...Object.values(grads)]);
      return out;
    };
    const first = once();
    for (let r = 0; r < 4; r++) expect(once(), `run ${r + 2}`).to.deep.equal(first);
    tf.dispose(x);
    m.dispose();
  });

  /** A tiny MobileFaceNet-shaped net (conv s2, BN, PReLU, depthwise, pointwise, GDConv, linear embedding) at 12 px. */
  function tinyNet(): tf.LayersModel {
    const init = (seed: number) => tf.initializers.heNormal({ seed });
    const bn = (x: tf.SymbolicTensor) => tf.layers.batchNormalization({ momentum: 0.9, epsilon: 1e-5 }).apply(x) as tf.SymbolicTensor;
    const prelu = (x: tf.SymbolicTensor) => tf.layers.prelu({ sharedAxes: [1, 2], alphaInitializer: tf.initializers.constant({ value: 0.25 }) }).apply(x) as tf.SymbolicTensor;
    const input = tf.input({ shape: [12, 12, 3] });
    let x = prelu(bn(tf.layers.conv2d({ filters: 8, kernelSize: 3, strides: 2, padding: 'same', useBias: false, kernelInitializer: init(1) }).apply(input) as tf.SymbolicTensor));
    x = prelu(bn(tf.layers.depthwiseConv2d({ kernelSize: 3, padding: 'same', useBias: false, depthwiseInitializer: init(2) }).apply(x) as tf.SymbolicTensor));
    x = bn(tf.layers.conv2d({ filters: 16, kernelSize: 1, useBias: false, kernelInitializer: init(3) }).apply(x) as tf.SymbolicTensor);
    x = bn(tf.layers.depthwiseConv2d({ kernelSize: 6, padding: 'valid', useBias: false, depthwiseInitializer: init(4) }).apply(x) as tf.SymbolicTensor);
    x = tf.layers.conv2d({ filters: 8, kernelSize: 1, useBias: false, kernelInitializer: init(5) }).apply(x) as tf.SymbolicTensor;
    return tf.model({ inputs: input, outputs: tf.layers.flatten().apply(x) as tf.SymbolicTensor });
  }

  /** Adam on MSE of L2-normalised embeddings against fixed targets, as the KD step; returns the loss per step. */
  async function train(backend: string, steps: number, onStep?: (i: number) => void): Promise<number[]> {
    await tf.setBackend(backend);
    const m = tinyNet();
    const opt = tf.train.adam(0.01);
    const x = tf.tensor(seeded(4 * 12 * 12 * 3, 11), [4, 12, 12, 3]);
    const t = tf.tidy(() => l2n(tf.tensor(seeded(4 * 8, 12), [4, 8])));
    const losses: number[] = [];
    for (let i = 0; i < steps; i++) {
      const loss = opt.minimize(() => tf.tidy(() => tf.mean(tf.squaredDifference(l2n(m.apply(x, { training: true }) as tf.Tensor), t)) as tf.Scalar), true)!;
      losses.push(loss.dataSync()[0]!);
      loss.dispose();
      onStep?.(i);
    }
    opt.dispose();
    m.dispose();
    tf.dispose([x, t]);
    return losses;
  }

  it('300 training steps of a tiny net follow the reference loss curve', async () => {
    const got = await train(NATIVE_BACKEND, 300);
    const want = await train('cpu', 300);
    expect(want[299]!, 'the reference learns').to.be.below(0.2 * want[0]!);
    let worst = 0;
    want.forEach((w, i) => { worst = Math.max(worst, Math.abs(got[i]! - w) / want[0]!); });
    expect(worst, 'largest loss difference, relative to the initial loss').to.be.below(1e-3);
  });

  it('leaks nothing: numTensors stays flat across training steps', async () => {
    const counts: number[] = [];
    await train(NATIVE_BACKEND, 12, (i) => { if (i >= 2) counts.push(tf.memory().numTensors); });
    expect(new Set(counts).size, `numTensors per step: ${counts}`).to.equal(1);
  });
});
