import { createRequire } from 'node:module';
import path from 'node:path';
import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { registerWasmGradKernels, WASM_GRAD_KERNELS } from '../../core/backends/wasm-grad-kernels.js';
import { seeded } from '../helpers/seeded.js';

type Pad = 'same' | 'valid' | number | tf.backend_util.ExplicitPadding;
type Rounding = 'floor' | 'round' | 'ceil' | undefined;
type Shape4 = [number, number, number, number];


const size = (s: number[]) => s.reduce((p, q) => p * q, 1);

/** max |a-b| / (max|b| + 1e-6), b being the cpu reference. */
function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).to.equal(b.length);
  let d = 0, m = 0;
  for (let i = 0; i < b.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    m = Math.max(m, Math.abs(b[i]));
  }
  return d / (m + 1e-6);
}

const TOL = 1e-4;
const worst: Record<string, number> = {};
function record(kernel: string, e: number): void {
  worst[kernel] = Math.max(worst[kernel] ?? 0, e);
}

interface Case {
  readonly k: number;        // square kernel size
  readonly s: number;        // stride
  readonly pad: Pad;
  readonly n: number;
  readonly h: number;
  readonly w: number;
  readonly ci: number;
  readonly co: number;       // conv2d only
  readonly round?: Rounding; // only with a numeric / explicit pad
}

const ex = (t: number, b: number, l: number, r: number): tf.backend_util.ExplicitPadding => [[0, 0], [t, b], [l, r], [0, 0]];
const padName = (p: Pad) => (typeof p === 'object' ? `explicit[${p[1]}|${p[2]}]` : String(p));
const caseName = (c: Case, dw: boolean) =>
  `${c.k}x${c.k} s${c.s} pad=${padName(c.pad)}${c.round ? `/${c.round}` : ''} x=[${c.n},${c.h},${c.w},${c.ci}]` +
  (dw ? '' : ` co=${c.co}`);

// Kernel sizes 1/3/5/7, stride 1/2, 'same'/'valid'/numeric/explicit pads, odd/even/non-square sizes, varied n/c.
const CASES: readonly Case[] = [
  { k: 1, s: 1, pad: 'valid', n: 2, h: 6, w: 6, ci: 3, co: 4 },
  { k: 1, s: 1, pad: 'same', n: 1, h: 5, w: 7, ci: 4, co: 2 },
  { k: 1, s: 2, pad: 'same', n: 2, h: 8, w: 8, ci: 3, co: 5 },
  { k: 1, s: 2, pad: 'valid', n: 3, h: 7, w: 9, ci: 2, co: 3 },
  { k: 1, s: 1, pad: ex(1, 0, 0, 1), n: 2, h: 5, w: 4, ci: 3, co: 2 },
  { k: 3, s: 1, pad: 'same', n: 2, h: 7, w: 7, ci: 3, co: 4 },
  { k: 3, s: 1, pad: 'same', n: 1, h: 8, w: 6, ci: 1, co: 8 },
  { k: 3, s: 1, pad: 'valid', n: 3, h: 6, w: 7, ci: 4, co: 3 },
  { k: 3, s: 2, pad: 'same', n: 2, h: 8, w: 8, ci: 4, co: 6 },
  { k: 3, s: 2, pad: 'same', n: 3, h: 7, w: 9, ci: 2, co: 3 },
  { k: 3, s: 2, pad: 'valid', n: 2, h: 9, w: 8, ci: 3, co: 4 },
  { k: 3, s: 1, pad: 1, n: 2, h: 6, w: 5, ci: 3, co: 5 },
  { k: 3, s: 2, pad: 1, n: 1, h: 9, w: 9, ci: 2, co: 4 },
  { k: 3, s: 2, pad: ex(1, 2, 2, 0), n: 2, h: 8, w: 7, ci: 3, co: 4 },
  { k: 3, s: 1, pad: ex(0, 1, 1, 0), n: 1, h: 6, w: 6, ci: 5, co: 2 },
  { k: 5, s: 1, pad: 'same', n: 2, h: 8, w: 8, ci: 3, co: 4 },
  { k: 5, s: 2, pad: 'same', n: 1, h: 9, w: 11, ci: 4, co: 3 },
  { k: 5, s: 1, pad: 'valid', n: 2, h: 9, w: 7, ci: 2, co: 3 },
  { k: 5, s: 2, pad: 2, n: 2, h: 10, w: 10, ci: 3, co: 2 },
  { k: 7, s: 2, pad: 'same', n: 2, h: 12, w: 12, ci: 3, co: 4 },
  { k: 7, s: 1, pad: 'valid', n: 1, h: 9, w: 10, ci: 2, co: 3 },
  { k: 7, s: 2, pad: ex(3, 3, 3, 3), n: 2, h: 11, w: 11, ci: 3, co: 2 },
  { k: 7, s: 1, pad: 'same', n: 1, h: 8, w: 9, ci: 2, co: 2 },
];

/** Forward output shape (same convInfo tfjs uses), so the upstream gradient can be seeded independently. */
function outShape(c: Case, depthwise: boolean): Shape4 {
  const fs: Shape4 = [c.k, c.k, c.ci, depthwise ? 1 : c.co];
  return tf.backend_util.computeConv2DInfo([c.n, c.h, c.w, c.ci], fs, c.s, 1, c.pad, c.round, depthwise).outShape as Shape4;
}

/** dx and dW of sum(conv(x, W) · r) on the given backend (r: seeded upstream gradient). */
async function grads(backend: string, c: Case, depthwise: boolean, seed: number): Promise<{ dx: Float32Array; dw: Float32Array }> {
  expect(await tf.setBackend(backend)).to.equal(true);
  expect(tf.getBackend()).to.equal(backend);
  const xs: Shape4 = [c.n, c.h, c.w, c.ci];
  const ws: Shape4 = [c.k, c.k, c.ci, depthwise ? 1 : c.co];
  const os = outShape(c, depthwise);
  const [dx, dw] = tf.tidy(() => {
    const x = tf.tensor4d(seeded(size(xs), seed), xs);
    const w = tf.tensor4d(seeded(size(ws), seed + 1), ws);
    const r = tf.tensor4d(seeded(size(os), seed + 2), os);
    const f = (a: tf.Tensor, b: tf.Tensor) => {
      const y = depthwise
        ? tf.depthwiseConv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.s, c.pad, 'NHWC', 1, c.round)
        : tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.s, c.pad, 'NHWC', 1, c.round);
      return tf.sum(tf.mul(y, r));
    };
    return tf.grads(f)([x, w]);
  });
  const out = { dx: dx.dataSync() as Float32Array, dw: dw.dataSync() as Float32Array };
  tf.dispose([dx, dw]);
  return out;
}

/** Runs one kernel directly (bypassing the forward op) on the given backend. */
async function runDirect(backend: string, kernel: string, inputs: Record<string, { shape: number[]; seed: number }>,
  attrs: object): Promise<Float32Array> {
  await tf.setBackend(backend);
  const ts = Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, tf.tensor(seeded(size(v.shape), v.seed), v.shape)]));
  const out = tf.engine().runKernel(kernel, ts, attrs as unknown as tf.NamedAttrMap) as tf.Tensor;
  const vals = out.dataSync() as Float32Array;
  tf.dispose([out, ...Object.values(ts)]);
  return vals;
}

describe('wasm gradient kernels (Conv2DBackpropFilter, DepthwiseConv2dNativeBackprop{Filter,Input})', function () {
  this.timeout(120_000);
  let previous: string | null = null;

  before(async () => {
    previous = tf.engine().backendName ?? null;
    setWasmPaths(path.dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm/package.json')) + '/dist/');
    registerWasmGradKernels();
    expect(await tf.setBackend('wasm')).to.equal(true);
    expect(await tf.setBackend('cpu')).to.equal(true);
  });

  after(async () => {
    await tf.setBackend(previous ?? 'cpu');
    // Worst relative errors per kernel, for the record.
    console.log('      max relative error vs cpu:', Object.entries(worst).map(([k, v]) => `${k} ${v.toExponential(2)}`).join(', '));
  });

  it('registers the three kernels for wasm, idempotently', () => {
    expect(WASM_GRAD_KERNELS).to.have.members(['Conv2DBackpropFilter', 'DepthwiseConv2dNativeBackpropFilter', 'DepthwiseConv2dNativeBackpropInput']);
    const before = WASM_GRAD_KERNELS.map((k) => tf.getKernel(k, 'wasm'));
    registerWasmGradKernels();
    registerWasmGradKernels();
    WASM_GRAD_KERNELS.forEach((k, i) => {
      expect(tf.getKernel(k, 'wasm'), k).to.not.equal(undefined);
      expect(tf.getKernel(k, 'wasm')).to.equal(before[i]);
    });
  });

  it('training needs them: without the kernel wasm fails; re-registering restores only what is missing', async () => {
    await tf.setBackend('wasm');
    const x = tf.ones([1, 5, 5, 2]) as tf.Tensor4D;
    const w = tf.ones([3, 3, 2, 2]) as tf.Tensor4D;
    const g = () => tf.tidy(() => tf.grad((b: tf.Tensor) => tf.sum(tf.conv2d(x, b as tf.Tensor4D, 1, 'same')))(w).dataSync());
    const others = WASM_GRAD_KERNELS.filter((k) => k !== 'Conv2DBackpropFilter').map((k) => tf.getKernel(k, 'wasm'));
    tf.unregisterKernel('Conv2DBackpropFilter', 'wasm');
    try {
      expect(g).to.throw(/Conv2DBackpropFilter/);
    } finally {
      registerWasmGradKernels();
    }
    expect(g()[0]).to.equal(16); // dW[0,0,·,·] of a 'same' 3×3 conv on 5×5 ones: the tap sees 4×4 input pixels
    WASM_GRAD_KERNELS.filter((k) => k !== 'Conv2DBackpropFilter').forEach((k, i) => expect(tf.getKernel(k, 'wasm')).to.equal(others[i]));
    tf.dispose([x, w]);
  });

  CASES.forEach((c, i) => {
    it(`conv2d dx, dW match cpu: ${caseName(c, false)}`, async () => {
      const ref = await grads('cpu', c, false, 100 + i * 7);
      const got = await grads('wasm', c, false, 100 + i * 7);
      const ex = relErr(got.dx, ref.dx), ew = relErr(got.dw, ref.dw);
      record('Conv2DBackpropInput (wasm built-in)', ex);
      record('Conv2DBackpropFilter', ew);
      expect(ex, 'dx').to.be.below(TOL);
      expect(ew, 'dW').to.be.below(TOL);
    });
  });

  CASES.forEach((c, i) => {
    it(`depthwiseConv2d dx, dW match cpu: ${caseName(c, true)}`, async () => {
      const ref = await grads('cpu', c, true, 500 + i * 7);
      const got = await grads('wasm', c, true, 500 + i * 7);
      const ex = relErr(got.dx, ref.dx), ew = relErr(got.dw, ref.dw);
      record('DepthwiseConv2dNativeBackpropInput', ex);
      record('DepthwiseConv2dNativeBackpropFilter', ew);
      expect(ex, 'dx').to.be.below(TOL);
      expect(ew, 'dW').to.be.below(TOL);
    });
  });

  // Direct kernel calls: dimRoundingMode and pads larger than k-1, which the forward op would not exercise well.
  const DIRECT: readonly Case[] = [
    { k: 3, s: 2, pad: 1, round: 'ceil', n: 2, h: 6, w: 7, ci: 3, co: 2 },
    { k: 3, s: 2, pad: 1, round: 'floor', n: 2, h: 6, w: 7, ci: 3, co: 2 },
    { k: 5, s: 2, pad: 1, round: 'round', n: 1, h: 8, w: 9, ci: 2, co: 3 },
    { k: 3, s: 2, pad: ex(4, 0, 0, 3), n: 2, h: 5, w: 6, ci: 2, co: 2 },
    { k: 1, s: 2, pad: ex(2, 1, 1, 2), round: 'ceil', n: 1, h: 5, w: 4, ci: 3, co: 2 },
  ];
  DIRECT.forEach((c, i) => {
    it(`kernels called directly match cpu: ${caseName(c, false)}`, async () => {
      const xs: Shape4 = [c.n, c.h, c.w, c.ci];
      const common = { strides: c.s, pad: c.pad, dimRoundingMode: c.round };
      const convAttrs = { ...common, dataFormat: 'NHWC', filterShape: [c.k, c.k, c.ci, c.co] };
      const dwAttrs = { ...common, dilations: 1, filterShape: [c.k, c.k, c.ci, 1] };
      const inAttrs = { ...common, dilations: 1, inputShape: xs };
      const convIn = { x: { shape: xs, seed: 900 + i }, dy: { shape: outShape(c, false), seed: 950 + i } };
      const dwIn = { x: { shape: xs, seed: 900 + i }, dy: { shape: outShape(c, true), seed: 970 + i } };
      const inIn = { dy: { shape: outShape(c, true), seed: 970 + i }, filter: { shape: [c.k, c.k, c.ci, 1], seed: 990 + i } };
      for (const [kernel, inputs, attrs] of [
        ['Conv2DBackpropFilter', convIn, convAttrs],
        ['DepthwiseConv2dNativeBackpropFilter', dwIn, dwAttrs],
        ['DepthwiseConv2dNativeBackpropInput', inIn, inAttrs],
      ] as const) {
        const e = relErr(await runDirect('wasm', kernel, inputs, attrs), await runDirect('cpu', kernel, inputs, attrs));
        record(kernel, e);
        expect(e, kernel).to.be.below(TOL);
      }
    });
  });

  it('throws a clear error for unsupported cases (channel multiplier > 1, NCHW, stride and dilation > 1)', async () => {
    await tf.setBackend('wasm');
    const x = tf.ones([1, 6, 6, 2]) as tf.Tensor4D;
    const w2 = tf.ones([3, 3, 2, 2]) as tf.Tensor4D;
    expect(() => tf.tidy(() => tf.grads((a: tf.Tensor, b: tf.Tensor) =>
      tf.sum(tf.depthwiseConv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'same')))([x, w2]))).to.throw(/channel multiplier 2/);
    const dy = tf.ones([1, 6, 6, 2]);
    expect(() => tf.engine().runKernel('Conv2DBackpropFilter', { x, dy },
      { strides: 1, pad: 'same', dataFormat: 'NCHW', filterShape: [3, 3, 2, 2] } as unknown as tf.NamedAttrMap)).to.throw(/NCHW/);
    const dy3 = tf.ones([1, 3, 3, 2]);
    expect(() => tf.engine().runKernel('DepthwiseConv2dNativeBackpropFilter', { x, dy: dy3 },
      { strides: 2, dilations: 2, pad: 'same', filterShape: [3, 3, 2, 1] } as unknown as tf.NamedAttrMap)).to.throw(/stride.*dilation/);
    tf.dispose([x, w2, dy, dy3]);
  });

  it('a conv2d + depthwise + dense net trains 3 Adam steps on wasm with the same losses as cpu', async () => {
    const run = async (backend: string): Promise<number[]> => {
      await tf.setBackend(backend);
      const x = tf.tensor4d(seeded(4 * 10 * 9 * 3, 7), [4, 10, 9, 3]);
      const labels = tf.oneHot(tf.tensor1d([0, 2, 1, 2], 'int32'), 3);
      const w1 = tf.variable(tf.tensor4d(seeded(3 * 3 * 3 * 8, 11), [3, 3, 3, 8]).mul(0.3), true, `w1_${backend}`);
      const w2 = tf.variable(tf.tensor4d(seeded(3 * 3 * 8, 12), [3, 3, 8, 1]).mul(0.3), true, `w2_${backend}`);
      const w3 = tf.variable(tf.tensor2d(seeded(5 * 5 * 8 * 3, 13), [200, 3]).mul(0.1), true, `w3_${backend}`);
      const b3 = tf.variable(tf.zeros([3]), true, `b3_${backend}`);
      const opt = tf.train.adam(0.01);
      const losses: number[] = [];
      for (let step = 0; step < 3; step++) {
        const loss = opt.minimize(() => {
          const h1 = tf.relu(tf.conv2d(x, w1 as tf.Tensor4D, 2, 'same'));              // [4,5,5,8]
          const h2 = tf.relu(tf.depthwiseConv2d(h1, w2 as tf.Tensor4D, 1, 'same'));   // [4,5,5,8]
          const logits = tf.add(tf.matMul(tf.reshape(h2, [4, 200]), w3), b3);
          return tf.losses.softmaxCrossEntropy(labels, logits) as tf.Scalar;
        }, true)!;
        losses.push(loss.dataSync()[0]);
        loss.dispose();
      }
      opt.dispose();
      tf.dispose([x, labels, w1, w2, w3, b3]);
      return losses;
    };
    const cpu = await run('cpu');
    const wasm = await run('wasm');
    expect(cpu[2]).to.be.below(cpu[0]); // it does learn
    wasm.forEach((l, i) => expect(Math.abs(l - cpu[i]), `step ${i}: wasm ${l} cpu ${cpu[i]}`).to.be.below(1e-4));
  });

  it('leaks nothing: numTensors and wasm data ids stay flat across 20 gradient computations', async () => {
    await tf.setBackend('wasm');
    const x = tf.variable(tf.tensor4d(seeded(2 * 8 * 8 * 3, 21), [2, 8, 8, 3]), true, 'leak_x');
    const w = tf.variable(tf.tensor4d(seeded(3 * 3 * 3 * 4, 22), [3, 3, 3, 4]), true, 'leak_w');
    const w1 = tf.variable(tf.tensor4d(seeded(1 * 1 * 3 * 4, 23), [1, 1, 3, 4]), true, 'leak_w1');
    const d = tf.variable(tf.tensor4d(seeded(3 * 3 * 4, 24), [3, 3, 4, 1]), true, 'leak_d');
    const f = () => tf.sum(tf.depthwiseConv2d(tf.add(tf.conv2d(x, w, 2, 'same'), tf.conv2d(x, w1, 2, 'same')), d, 2, 'same')) as tf.Scalar;
    const once = () => {
      const { value, grads: g } = tf.variableGrads(f);
      tf.dispose([value, ...Object.values(g)]);
    };
    once(); // warm-up
    const tensors = tf.memory().numTensors;
    const ids = tf.engine().backend.numDataIds();
    for (let i = 0; i < 20; i++) once();
    expect(tf.memory().numTensors).to.equal(tensors);
    expect(tf.engine().backend.numDataIds()).to.equal(ids);
    tf.dispose([x, w, w1, d]);
  });
});
