/**
 * tfjs kernels for the `cpu-native` backend that run in facedistill's native addon.
 *
 * The backend's storage is the pure-JS cpu backend's (one typed array per tensor), so the addon reads inputs and
 * writes outputs in place, with no copy. Each kernel checks the case it handles (float32, NHWC, dilation 1, operands
 * that broadcast along leading axes, contiguous reduction axes, …) and otherwise calls the cpu reference kernel, so
 * every op the backend is asked for still runs, only the hot training ops get faster.
 */
import * as tf from '@tensorflow/tfjs';
import type { NativeKernels } from './addon.js';
import type { BufferPool } from './buffer-pool.js';
import { countDeclined, countNative } from './stats.js';

export { nativeFallbackWarnings, nativeKernelStats, resetNativeKernelStats, type NativeKernelStats } from './stats.js';

/** The slice of MathBackendCPU the kernels use. */
interface CpuStorage extends tf.KernelBackend {
  data: { get(dataId: tf.DataId): { values: tf.backend_util.BackendValues } };
  makeTensorInfo(shape: number[], dtype: tf.DataType, values?: tf.backend_util.BackendValues): tf.TensorInfo;
}

type KernelFunc = tf.KernelConfig['kernelFunc'];
type Inputs = Parameters<KernelFunc>[0]['inputs'];
type Attrs = NonNullable<Parameters<KernelFunc>[0]['attrs']>;

/** Names of the fused gradient kernels (see fused-gradients.ts); registered only where a fast implementation exists. */
export const BATCH_NORM_STATS_GRAD = 'FacedistillBatchNormStatsGrad';
export const PRELU_GRAD_INPUT = 'FacedistillPreluGradInput';
export const PRELU_GRAD_ALPHA = 'FacedistillPreluGradAlpha';
/** Training-mode BatchNorm as one op (batch statistics, normalisation) and its two gradient kernels. */
export const BN_TRAIN = 'FacedistillBatchNormTrain';
export const BN_TRAIN_GRAD_PARAMS = 'FacedistillBatchNormTrainGradParams';
export const BN_TRAIN_GRAD_INPUT = 'FacedistillBatchNormTrainGradInput';
/**
 * PReLU(BatchNorm(x)) in training mode from BatchNorm's input and batch statistics (see batchnorm-training.ts), and its
 * gradients (dx, dScale, dOffset, dAlpha) in one op. The statistics come as attributes (Float32Arrays), not inputs:
 * the op's gradient already accounts for their dependence on x.
 */
export const BN_PRELU_TRAIN = 'FacedistillBatchNormPreluTrain';
export const BN_PRELU_TRAIN_GRAD = 'FacedistillBatchNormPreluTrainGrad';
export interface BnPreluAttrs { mean: Float32Array; variance: Float32Array; varianceEpsilon: number }
/** Adam's update of one variable as one op (see core/engine/optimizer.ts): outputs new value, first and second moment. */
export const ADAM_UPDATE = 'FacedistillAdamUpdate';
/** Its attributes, float32 values, exactly the scalars tfjs's AdamOptimizer multiplies and divides by. */
export interface AdamUpdateAttrs {
  beta1: number; oneMinusBeta1: number; beta2: number; oneMinusBeta2: number;
  oneMinusAccBeta1: number; oneMinusAccBeta2: number; epsilon: number; negLearningRate: number;
}

const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

function f32(b: CpuStorage, t: tf.TensorInfo): Float32Array {
  const v = b.data.get(t.dataId).values;
  // Some cpu kernels leave a float32 tensor's values in another typed array (e.g. an Int32Array scalar).
  return v instanceof Float32Array ? v : Float32Array.from(v as ArrayLike<number>);
}


function out(b: CpuStorage, shape: number[], values: Float32Array | Uint8Array, dtype: tf.DataType = 'float32'): tf.TensorInfo {
  return b.makeTensorInfo(shape, dtype, values);
}

const isF32 = (...ts: (tf.TensorInfo | undefined)[]) => ts.every((t) => !t || t.dtype === 'float32');

/**
 * True when `shape` broadcasts onto `target` by repetition along leading axes only (its leading 1s stripped, it
 * equals target's trailing dims), so element i of the broadcast is element i % size(shape).
 */
export function repeatsAlongLeadingAxes(shape: readonly number[], target: readonly number[]): boolean {
  let s = 0;
  while (s < shape.length && shape[s] === 1) s++;
  const rest = shape.slice(s);
  if (rest.length > target.length) return false;
  const tail = target.slice(target.length - rest.length);
  return rest.every((d, i) => d === tail[i]);
}

/** Conv geometry for the addon: [n, h, w, ci, oh, ow, co, kh, kw, sh, sw, pt, pl]. */
function geometry(c: tf.backend_util.Conv2DInfo): Int32Array {
  return Int32Array.from([c.batchSize, c.inHeight, c.inWidth, c.inChannels, c.outHeight, c.outWidth, c.outChannels,
    c.filterHeight, c.filterWidth, c.strideHeight, c.strideWidth, c.padInfo.top, c.padInfo.left]);
}

/** Why the addon's convolutions cannot run this geometry (NHWC, dilation 1, channel multiplier 1), or undefined. */
function convDeclines(c: tf.backend_util.Conv2DInfo, depthwise: boolean): string | undefined {
  if (c.dataFormat !== 'channelsLast') return 'in NCHW';
  if (c.dilationHeight !== 1 || c.dilationWidth !== 1) return `with dilation ${c.dilationHeight}x${c.dilationWidth}`;
  if (depthwise && c.outChannels !== c.inChannels) return `with channel multiplier ${c.outChannels / c.inChannels}`;
  return undefined;
}

/** A kernel's reason for leaving a case to the reference kernel (completes "cpu-native: <kernel> … runs on …"). */
type Declined = string;

/** The fused activations tfjs's cpu backend defines (applyActivation), with the addon's codes. */
const ACTIVATIONS = { linear: 0, relu: 1, relu6: 2, prelu: 3, leakyrelu: 4, elu: 5, sigmoid: 6 } as const;

/** Most merged axes the addon's broadcasting loop takes. */
export const MAX_RANK = 8;

/**
 * The geometry of a general broadcast for the addon: [R, out shape (R), a's strides (R), b's strides (R)], in elements,
 * stride 0 along the axes an operand is broadcast on; axes of size 1 dropped and adjacent axes merged where both
 * operands continue contiguously (or both stay broadcast), so [N,H,W,C] ⊙ [N,1,1,C] becomes [N, H·W, C] with b's
 * strides [C, 0, 1]. Undefined when more than MAX_RANK axes remain.
 */
export function broadcastDims(aShape: readonly number[], bShape: readonly number[], outShape: readonly number[]): Int32Array | undefined {
  const r = outShape.length;
  const strides = (s: readonly number[]) => {
    const p = [...new Array<number>(r - s.length).fill(1), ...s];
    const st = new Array<number>(r);
    for (let i = r - 1, acc = 1; i >= 0; i--) { st[i] = p[i] === 1 ? 0 : acc; acc *= p[i]!; }
    return st;
  };
  const sa = strides(aShape), sb = strides(bShape);
  const dims: { n: number; a: number; b: number }[] = [];
  for (let i = 0; i < r; i++) {
    const n = outShape[i]!;
    if (n === 1) continue;
    const last = dims.at(-1);
    if (last && last.a === sa[i]! * n && last.b === sb[i]! * n) { last.n *= n; last.a = sa[i]!; last.b = sb[i]!; }
    else dims.push({ n, a: sa[i]!, b: sb[i]! });
  }
  if (dims.length === 0) dims.push({ n: 1, a: 0, b: 0 });
  if (dims.length > MAX_RANK) return undefined;
  return Int32Array.from([dims.length, ...dims.map((d) => d.n), ...dims.map((d) => d.a), ...dims.map((d) => d.b)]);
}

type ConvAttrs = {
  strides: number | [number, number]; pad: 'same' | 'valid' | number | tf.backend_util.ExplicitPadding;
  dataFormat?: 'NHWC' | 'NCHW'; dilations?: number | [number, number]; dimRoundingMode?: 'floor' | 'round' | 'ceil';
  inputShape?: [number, number, number, number]; filterShape?: [number, number, number, number];
  activation?: string; leakyreluAlpha?: number;
};

const fmt = (f: ConvAttrs['dataFormat']) => tf.backend_util.convertConv2DDataFormat(f ?? 'NHWC');

/** Builds the kernel table. `reference(name)` is the cpu backend's kernel of that name (the fallback). */
export function nativeKernelConfigs(k: NativeKernels, backendName: string, reference: (name: string) => KernelFunc, pool?: BufferPool): tf.KernelConfig[] {
  // Output buffers, which the kernels overwrite whole: recycled ones where the backend has a pool.
  const alloc = pool ? (n: number) => pool.take(n) : (n: number) => new Float32Array(n);
  const counted = new Set<tf.KernelConfig>();
  // A native kernel returns its output, or why it declines the case (a phrase completing "cpu-native: <kernel> … runs
  // on tfjs's pure-JS kernel"), and the reference kernel runs instead: counted, and said once per (kernel, reason).
  const kernel = (kernelName: string, run: (inputs: Inputs, b: CpuStorage, attrs: Attrs) => tf.TensorInfo | tf.TensorInfo[] | Declined): tf.KernelConfig => {
    const fallback = reference(kernelName);
    const config: tf.KernelConfig = {
      kernelName, backendName,
      kernelFunc: (args) => {
        const t0 = performance.now();
        const r = run(args.inputs, args.backend as CpuStorage, args.attrs ?? {});
        if (typeof r !== 'string') {
          countNative(kernelName, performance.now() - t0);
          return r;
        }
        const t1 = performance.now();
        const res = fallback(args);
        const outs = Array.isArray(res) ? res : [res];
        countDeclined(kernelName, r, performance.now() - t1, outs.reduce((n, t) => n + size(t.shape), 0));
        return res;
      },
    };
    counted.add(config);
    return config;
  };

  const binaryKernel = (name: string, op: number) => kernel(name, (inputs, b) => {
    const { a, b: bb } = inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    if (!isF32(a, bb)) return `with ${a.dtype === 'float32' ? bb.dtype : a.dtype} operands`;
    const shape = tf.backend_util.assertAndGetBroadcastShape(a.shape, bb.shape);
    // Leading-axes repetition (same shape, scalars, [C] on [.., C]): the flat loops; anything else: strided rows.
    const dims = repeatsAlongLeadingAxes(a.shape, shape) && repeatsAlongLeadingAxes(bb.shape, shape) ? null : broadcastDims(a.shape, bb.shape, shape);
    if (dims === undefined) return `broadcasting ${JSON.stringify(a.shape)} with ${JSON.stringify(bb.shape)} (over ${MAX_RANK} merged axes)`;
    const o = alloc(size(shape));
    if (dims === null) k.binary(op, f32(b, a), f32(b, bb), o);
    else k.binaryBroadcast(op, f32(b, a), f32(b, bb), o, dims);
    return out(b, shape, o);
  });

  const unaryKernel = (name: string, op: number, param?: (attrs: Attrs) => number) => kernel(name, (inputs, b, attrs) => {
    const { x } = inputs as { x: tf.TensorInfo };
    if (!isF32(x)) return `on ${x.dtype}`;
    const o = alloc(size(x.shape));
    k.unary(op, f32(b, x), o, param ? param(attrs) : 0);
    return out(b, x.shape, o);
  });

  const reduceKernel = (name: string, mean: boolean) => kernel(name, (inputs, b, attrs) => {
    const { x } = inputs as { x: tf.TensorInfo };
    const { axis, keepDims } = attrs as { axis: number | number[]; keepDims: boolean };
    if (!isF32(x)) return `on ${x.dtype}`;
    const axes = tf.util.parseAxisParam(axis, x.shape).sort((p, q) => p - q);
    if (axes.some((a, i) => i > 0 && a !== axes[i - 1]! + 1)) return 'over non-contiguous axes';
    // No axis (what some gradients ask for): a copy, as [size, 1, 1].
    const first = axes[0] ?? x.shape.length, last = axes.at(-1) ?? x.shape.length - 1;
    const outer = size(x.shape.slice(0, first)), mid = size(x.shape.slice(first, last + 1)), inner = size(x.shape.slice(last + 1));
    if (mid === 0) return 'over an empty axis';
    const reduced = x.shape.filter((_, i) => !axes.includes(i));
    const shape = keepDims ? tf.backend_util.expandShapeToKeepDim(reduced, axes) : reduced;
    const o = alloc(outer * inner);
    k.reduceSum(f32(b, x), o, outer, mid, inner, mean ? 1 / mid : 1);
    return out(b, shape, o);
  });

  const poolKernel = (name: string, max: boolean) => kernel(name, (inputs, b, attrs) => {
    const { x } = inputs as { x: tf.TensorInfo };
    const a = attrs as { filterSize: number | [number, number]; strides: number | [number, number]; pad: ConvAttrs['pad']; dimRoundingMode?: 'floor' | 'round' | 'ceil' };
    if (!isF32(x)) return `on ${x.dtype}`;
    if (x.shape.length !== 4) return `on rank ${x.shape.length}`;
    const c = tf.backend_util.computePool2DInfo(x.shape as [number, number, number, number], a.filterSize, a.strides, 1, a.pad, a.dimRoundingMode);
    const o = alloc(size(c.outShape));
    k.pool(f32(b, x), o, geometry(c), max ? 1 : 0);
    return out(b, c.outShape, o);
  });

  const convKernel = (name: string, run: (inputs: Inputs, b: CpuStorage, a: ConvAttrs) => tf.TensorInfo | Declined) =>
    kernel(name, (inputs, b, attrs) => run(inputs, b, attrs as unknown as ConvAttrs));

  /**
   * The fused forward convolutions (what graph models and tf.layers with a bias run): bias add and activation in the
   * kernel's epilogue. Declines an activation tfjs does not define for the cpu backend, and a bias or PReLU weights
   * that are not a scalar or whole rows of the output channels along its leading axes.
   */
  const fusedConv = (name: string, depthwise: boolean) => convKernel(name, ({ x, filter, bias, preluActivationWeights: pw }, b, a) => {
    if (!isF32(x, filter, bias, pw)) return 'with non-float32 inputs';
    const act = a.activation ?? 'linear';
    const code = ACTIVATIONS[act as keyof typeof ACTIVATIONS];
    if (code === undefined) return `with activation '${act}'`;
    if (depthwise && a.dataFormat === 'NCHW') return 'in NCHW';
    const c = tf.backend_util.computeConv2DInfo(x!.shape as [number, number, number, number], filter!.shape as [number, number, number, number],
      a.strides, a.dilations ?? 1, a.pad, a.dimRoundingMode, depthwise, depthwise ? 'channelsLast' : fmt(a.dataFormat));
    const why = convDeclines(c, depthwise);
    if (why) return why;
    for (const [t, what] of [[bias, 'a bias'], [act === 'prelu' ? pw : undefined, 'PReLU weights']] as const) {
      if (t && !(t.shape.length <= c.outShape.length && repeatsAlongLeadingAxes(t.shape, c.outShape)))
        return `with ${what} of shape ${JSON.stringify(t.shape)} for an output of ${JSON.stringify(c.outShape)}`;
    }
    if (act === 'prelu' && !pw) return "with activation 'prelu' and no weights";
    const o = alloc(size(c.outShape));
    (depthwise ? k.depthwiseFused : k.conv2dFused)(f32(b, x!), f32(b, filter!), bias ? f32(b, bias) : null,
      act === 'prelu' ? f32(b, pw!) : null, o, geometry(c), code, act === 'leakyrelu' ? a.leakyreluAlpha ?? 0.2 : 0);
    return out(b, c.outShape, o);
  });

  const configs: tf.KernelConfig[] = [
    convKernel(tf.Conv2D, ({ x, filter }, b, a) => {
      if (!isF32(x, filter)) return 'with non-float32 inputs';
      const c = tf.backend_util.computeConv2DInfo(x!.shape as [number, number, number, number], filter!.shape as [number, number, number, number],
        a.strides, a.dilations ?? 1, a.pad, a.dimRoundingMode, false, fmt(a.dataFormat));
      const why = convDeclines(c, false);
      if (why) return why;
      const o = alloc(size(c.outShape));
      k.conv2d(f32(b, x!), f32(b, filter!), o, geometry(c));
      return out(b, c.outShape, o);
    }),
    fusedConv(tf.FusedConv2D, false),
    fusedConv(tf.FusedDepthwiseConv2D, true),
    convKernel(tf.Conv2DBackpropInput, ({ dy, filter }, b, a) => {
      if (!isF32(dy, filter)) return 'with non-float32 inputs';
      const c = tf.backend_util.computeConv2DInfo(a.inputShape!, filter!.shape as [number, number, number, number], a.strides, 1, a.pad,
        a.dimRoundingMode, false, fmt(a.dataFormat));
      const why = convDeclines(c, false);
      if (why) return why;
      const o = alloc(size(c.inShape));
      k.conv2dBackpropInput(f32(b, dy!), f32(b, filter!), o, geometry(c));
      return out(b, [...a.inputShape!], o);
    }),
    convKernel(tf.Conv2DBackpropFilter, ({ x, dy }, b, a) => {
      if (!isF32(x, dy)) return 'with non-float32 inputs';
      const c = tf.backend_util.computeConv2DInfo(x!.shape as [number, number, number, number], a.filterShape!, a.strides, 1, a.pad,
        a.dimRoundingMode, false, fmt(a.dataFormat));
      const why = convDeclines(c, false);
      if (why) return why;
      const o = alloc(size(a.filterShape!));
      k.conv2dBackpropFilter(f32(b, x!), f32(b, dy!), o, geometry(c));
      return out(b, [...a.filterShape!], o);
    }),
    convKernel(tf.DepthwiseConv2dNative, ({ x, filter }, b, a) => {
      if (!isF32(x, filter)) return 'with non-float32 inputs';
      const c = tf.backend_util.computeConv2DInfo(x!.shape as [number, number, number, number], filter!.shape as [number, number, number, number],
        a.strides, a.dilations ?? 1, a.pad, a.dimRoundingMode, true);
      const why = convDeclines(c, true);
      if (why) return why;
      const o = alloc(size(c.outShape));
      k.depthwise(f32(b, x!), f32(b, filter!), o, geometry(c));
      return out(b, c.outShape, o);
    }),
    convKernel(tf.DepthwiseConv2dNativeBackpropInput, ({ dy, filter }, b, a) => {
      if (!isF32(dy, filter)) return 'with non-float32 inputs';
      const c = tf.backend_util.computeConv2DInfo(a.inputShape!, filter!.shape as [number, number, number, number], a.strides,
        a.dilations ?? 1, a.pad, a.dimRoundingMode, true);
      const why = convDeclines(c, true);
      if (why) return why;
      const o = alloc(size(c.inShape));
      k.depthwiseBackpropInput(f32(b, dy!), f32(b, filter!), o, geometry(c));
      return out(b, [...a.inputShape!], o);
    }),
    convKernel(tf.DepthwiseConv2dNativeBackpropFilter, ({ x, dy }, b, a) => {
      if (!isF32(x, dy)) return 'with non-float32 inputs';
      const c = tf.backend_util.computeConv2DInfo(x!.shape as [number, number, number, number], a.filterShape!, a.strides,
        a.dilations ?? 1, a.pad, a.dimRoundingMode, true);
      const why = convDeclines(c, true);
      if (why) return why;
      const o = alloc(size(a.filterShape!));
      k.depthwiseBackpropFilter(f32(b, x!), f32(b, dy!), o, geometry(c));
      return out(b, [...a.filterShape!], o);
    }),
    binaryKernel(tf.Add, 0),
    binaryKernel(tf.Sub, 1),
    binaryKernel(tf.Multiply, 2),
    binaryKernel(tf.RealDiv, 3),
    binaryKernel(tf.SquaredDifference, 4),
    binaryKernel(tf.Maximum, 5),
    binaryKernel(tf.Minimum, 6),
    unaryKernel(tf.Square, 0),
    unaryKernel(tf.Relu, 1),
    unaryKernel(tf.Neg, 2),
    unaryKernel(tf.Sqrt, 3),
    unaryKernel(tf.Rsqrt, 4),
    unaryKernel(tf.Sigmoid, 5),
    unaryKernel(tf.Relu6, 6),
    unaryKernel(tf.Elu, 7),
    unaryKernel(tf.LeakyRelu, 8, (a) => (a as { alpha: number }).alpha),
    unaryKernel(tf.Abs, 9),
    unaryKernel(tf.Exp, 10),
    kernel(tf.Greater, (inputs, b) => {
      const { a, b: bb } = inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
      if (!isF32(a, bb)) return `with ${a.dtype === 'float32' ? bb.dtype : a.dtype} operands`;
      const shape = tf.backend_util.assertAndGetBroadcastShape(a.shape, bb.shape);
      if (!repeatsAlongLeadingAxes(a.shape, shape) || !repeatsAlongLeadingAxes(bb.shape, shape))
        return `broadcasting ${JSON.stringify(a.shape)} with ${JSON.stringify(bb.shape)}`;
      const o = new Uint8Array(size(shape));
      k.greater(f32(b, a), f32(b, bb), o);
      return out(b, shape, o, 'bool');
    }),
    // Row copies in JS (no addon call needed): tfjs's reference gathers and flips element by element through index
    // arithmetic, ~100 ms for a batch of 16 images at 160 px (the teacher cache's sub-batch gather).
    kernel(tf.GatherV2, (inputs, b, attrs) => {
      const { x, indices } = inputs as { x: tf.TensorInfo; indices: tf.TensorInfo };
      const { axis, batchDims } = attrs as { axis: number; batchDims: number };
      if (!isF32(x) || indices.dtype !== 'int32') return `with ${x.dtype} values and ${indices.dtype} indices`;
      if (batchDims) return `with batchDims ${batchDims}`;
      const ax = tf.util.parseAxisParam(axis, x.shape)[0]!;
      const n = x.shape[ax]!, outer = size(x.shape.slice(0, ax)), inner = size(x.shape.slice(ax + 1));
      const idx = b.data.get(indices.dataId).values as Int32Array;
      if (idx.some((i) => i < 0 || i >= n)) return 'with an index out of range'; // the reference says which
      const src = f32(b, x), o = alloc(outer * idx.length * inner);
      for (let p = 0, w = 0; p < outer; p++) {
        for (let j = 0; j < idx.length; j++, w += inner) o.set(src.subarray((p * n + idx[j]!) * inner, (p * n + idx[j]! + 1) * inner), w);
      }
      return out(b, [...x.shape.slice(0, ax), ...indices.shape, ...x.shape.slice(ax + 1)], o);
    }),
    kernel(tf.FlipLeftRight, (inputs, b) => {
      const { image } = inputs as { image: tf.TensorInfo };
      if (!isF32(image) || image.shape.length !== 4) return `with a ${image.dtype} image of rank ${image.shape.length}`;
      const [nb, h, w, c] = image.shape as [number, number, number, number];
      const src = f32(b, image), o = alloc(size(image.shape));
      for (let row = 0; row < nb * h; row++) {
        const base = row * w * c;
        for (let x = 0; x < w; x++) o.set(src.subarray(base + (w - 1 - x) * c, base + (w - x) * c), base + x * c);
      }
      return out(b, image.shape, o);
    }),
    kernel(tf.Select, (inputs, b) => {
      const { condition, t, e } = inputs as { condition: tf.TensorInfo; t: tf.TensorInfo; e: tf.TensorInfo };
      if (condition.dtype !== 'bool' || !isF32(t, e)) return `with ${condition.dtype} condition and ${t.dtype} values`;
      if (!tf.util.arraysEqual(condition.shape, t.shape) || !tf.util.arraysEqual(t.shape, e.shape)) return 'with operands of different shapes';
      const o = alloc(size(t.shape));
      k.select(b.data.get(condition.dataId).values as Uint8Array, f32(b, t), f32(b, e), o);
      return out(b, t.shape, o);
    }),
    reduceKernel(tf.Sum, false),
    reduceKernel(tf.Mean, true),
    kernel(tf.BatchMatMul, (inputs, b, attrs) => {
      const { a, b: bb } = inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
      const { transposeA, transposeB } = attrs as { transposeA: boolean; transposeB: boolean };
      if (!isF32(a, bb)) return `with ${a.dtype === 'float32' ? bb.dtype : a.dtype} operands`;
      if (a.shape.length < 2 || bb.shape.length < 2) return 'on operands of rank < 2';
      const M = transposeA ? a.shape.at(-1)! : a.shape.at(-2)!, K = transposeA ? a.shape.at(-2)! : a.shape.at(-1)!;
      const N = transposeB ? bb.shape.at(-2)! : bb.shape.at(-1)!, K2 = transposeB ? bb.shape.at(-1)! : bb.shape.at(-2)!;
      if (K !== K2) return `with inner dimensions ${K} and ${K2}`; // the reference kernel throws tfjs's own error
      const aOuter = a.shape.slice(0, -2), bOuter = bb.shape.slice(0, -2);
      const outer = tf.backend_util.assertAndGetBroadcastShape(aOuter, bOuter);
      const batch = size(outer), aBatch = size(aOuter), bBatch = size(bOuter);
      if ((aBatch !== batch && aBatch !== 1) || (bBatch !== batch && bBatch !== 1)) return `broadcasting batch dims ${JSON.stringify(aOuter)} with ${JSON.stringify(bOuter)}`;
      const o = alloc(batch * M * N);
      k.matmul(f32(b, a), f32(b, bb), o, Int32Array.from([batch, M, N, K, transposeA ? 1 : 0, transposeB ? 1 : 0, aBatch === batch && batch > 1 ? 1 : 0, bBatch === batch && batch > 1 ? 1 : 0]));
      return out(b, [...outer, M, N], o);
    }),
    // Concat along one axis (and Pack, a concat along a new axis): row copies of [outer, inner_i] parts.
    kernel(tf.Concat, (inputs, b, attrs) => {
      const parts = Object.values(inputs) as tf.TensorInfo[];
      if (parts.length === 0) return 'of nothing';
      if (!isF32(...parts)) return `on ${parts.find((t) => t.dtype !== 'float32')!.dtype}`;
      const rank = parts[0]!.shape.length;
      if (rank === 0) return 'of scalars';
      const axis = tf.util.parseAxisParam((attrs as { axis: number | number[] }).axis, parts[0]!.shape)[0]!;
      if (parts.some((t) => t.shape.length !== rank || t.shape.some((d, i) => i !== axis && d !== parts[0]!.shape[i]))) return 'of mismatched shapes'; // the reference throws
      const shape = [...parts[0]!.shape];
      shape[axis] = parts.reduce((n, t) => n + t.shape[axis]!, 0);
      const outer = size(shape.slice(0, axis));
      const o = alloc(size(shape));
      k.concat(parts.map((t) => f32(b, t)), o, outer, Int32Array.from(parts.map((t) => size(t.shape.slice(axis)))));
      return out(b, shape, o);
    }),
    kernel(tf.Pack, (inputs, b, attrs) => {
      const parts = Object.values(inputs) as tf.TensorInfo[];
      if (parts.length === 0) return 'of nothing';
      if (!isF32(...parts)) return `on ${parts.find((t) => t.dtype !== 'float32')!.dtype}`;
      const s0 = parts[0]!.shape;
      if (parts.some((t) => !tf.util.arraysEqual(t.shape, s0))) return 'of tensors of different shapes';
      let axis = (attrs as { axis: number }).axis ?? 0;
      if (axis < 0) axis += s0.length + 1;
      const shape = [...s0.slice(0, axis), parts.length, ...s0.slice(axis)];
      const o = alloc(size(shape));
      k.concat(parts.map((t) => f32(b, t)), o, size(s0.slice(0, axis)), Int32Array.from(parts.map(() => size(s0.slice(axis)))));
      return out(b, shape, o);
    }),
    poolKernel(tf.MaxPool, true),
    poolKernel(tf.AvgPool, false),
    kernel(tf.FusedBatchNorm, (inputs, b, attrs) => {
      const { x, mean, variance, offset, scale } = inputs as Record<string, tf.TensorInfo | undefined>;
      if (!isF32(x, mean, variance, offset, scale)) return 'with non-float32 inputs';
      const C = x!.shape.at(-1)!;
      const fits = (t?: tf.TensorInfo) => !t || (repeatsAlongLeadingAxes(t.shape, [C]) && (size(t.shape) === C || size(t.shape) === 1));
      if (![mean, variance, offset, scale].every(fits)) return 'with parameters that are not per channel (last axis)';
      const o = alloc(size(x!.shape));
      k.batchNorm(f32(b, x!), f32(b, mean!), f32(b, variance!), offset ? f32(b, offset) : null, scale ? f32(b, scale) : null, o,
        (attrs as { varianceEpsilon: number }).varianceEpsilon);
      return out(b, x!.shape, o);
    }),
    kernel(tf.Prelu, (inputs, b) => {
      const { x, alpha } = inputs as { x: tf.TensorInfo; alpha: tf.TensorInfo };
      if (!isF32(x, alpha)) return 'with non-float32 inputs';
      if (!repeatsAlongLeadingAxes(alpha.shape, x.shape)) return `with alpha of shape ${JSON.stringify(alpha.shape)} for x of ${JSON.stringify(x.shape)}`;
      const o = alloc(size(x.shape));
      k.prelu(f32(b, x), f32(b, alpha), o);
      return out(b, x.shape, o);
    }),
    // Training-mode BatchNorm: only called by batchnorm-training.ts, with scale and offset of size C = x's last dim.
    {
      kernelName: BN_TRAIN, backendName,
      kernelFunc: ({ inputs, backend, attrs }) => {
        const b = backend as CpuStorage;
        const { x, scale, offset } = inputs as Record<string, tf.TensorInfo>;
        const C = x!.shape.at(-1)!;
        const y = alloc(size(x!.shape)), mean = new Float32Array(C), variance = new Float32Array(C);
        k.bnTrain(f32(b, x!), f32(b, scale!), f32(b, offset!), y, mean, variance, (attrs as { varianceEpsilon: number }).varianceEpsilon);
        return [out(b, x!.shape, y), out(b, [C], mean), out(b, [C], variance)];
      },
    },
    {
      kernelName: BN_TRAIN_GRAD_PARAMS, backendName,
      kernelFunc: ({ inputs, backend, attrs }) => {
        const b = backend as CpuStorage;
        const { dy, x, mean, variance } = inputs as Record<string, tf.TensorInfo>;
        const C = size(mean!.shape);
        const ds = new Float32Array(C), db = new Float32Array(C);
        k.bnTrainGradParams(f32(b, dy!), f32(b, x!), f32(b, mean!), f32(b, variance!), (attrs as { varianceEpsilon: number }).varianceEpsilon, ds, db);
        return [out(b, [C], ds), out(b, [C], db)];
      },
    },
    {
      kernelName: BN_TRAIN_GRAD_INPUT, backendName,
      kernelFunc: ({ inputs, backend, attrs }) => {
        const b = backend as CpuStorage;
        const { dy, x, scale, mean, variance, dScale, dOffset } = inputs as Record<string, tf.TensorInfo>;
        const dx = alloc(size(x!.shape));
        k.bnTrainGradInput(f32(b, dy!), f32(b, x!), f32(b, scale!), f32(b, mean!), f32(b, variance!), f32(b, dScale!), f32(b, dOffset!),
          (attrs as { varianceEpsilon: number }).varianceEpsilon, dx);
        return out(b, x!.shape, dx);
      },
    },
    // Fused gradients: only called by fused-gradients.ts after it checked the case (parameters of size C).
    {
      kernelName: BATCH_NORM_STATS_GRAD, backendName,
      kernelFunc: ({ inputs, backend, attrs }) => {
        const b = backend as CpuStorage;
        const { dy, x, mean, variance, scale } = inputs as Record<string, tf.TensorInfo | undefined>;
        const C = size(mean!.shape);
        const dm = new Float32Array(C), dv = new Float32Array(C), ds = new Float32Array(C), db = new Float32Array(C);
        k.batchNormStatsGrad(f32(b, dy!), f32(b, x!), f32(b, mean!), f32(b, variance!), scale ? f32(b, scale) : null,
          (attrs as { varianceEpsilon: number }).varianceEpsilon, dm, dv, ds, db);
        return [out(b, mean!.shape, dm), out(b, mean!.shape, dv), out(b, mean!.shape, ds), out(b, mean!.shape, db)];
      },
    },
    {
      kernelName: BN_PRELU_TRAIN, backendName,
      kernelFunc: ({ inputs, backend, attrs }) => {
        const b = backend as CpuStorage;
        const { x, scale, offset, alpha } = inputs as Record<string, tf.TensorInfo>;
        const a = attrs as unknown as BnPreluAttrs;
        const z = alloc(size(x!.shape));
        k.bnPrelu(f32(b, x!), f32(b, scale!), f32(b, offset!), f32(b, alpha!), a.mean, a.variance, a.varianceEpsilon, z);
        return out(b, x!.shape, z);
      },
    },
    {
      kernelName: BN_PRELU_TRAIN_GRAD, backendName,
      kernelFunc: ({ inputs, backend, attrs }) => {
        const b = backend as CpuStorage;
        const { dz, x, scale, offset, alpha } = inputs as Record<string, tf.TensorInfo>;
        const a = attrs as unknown as BnPreluAttrs;
        const C = a.mean.length;
        const dx = alloc(size(x!.shape)), ds = new Float32Array(C), db = new Float32Array(C), da = new Float32Array(C);
        k.bnPreluGrad(f32(b, dz!), f32(b, x!), f32(b, scale!), f32(b, offset!), f32(b, alpha!), a.mean, a.variance, a.varianceEpsilon,
          dx, ds, db, da);
        return [out(b, x!.shape, dx), out(b, scale!.shape, ds), out(b, offset!.shape, db), out(b, alpha!.shape, da)];
      },
    },
    {
      kernelName: ADAM_UPDATE, backendName,
      kernelFunc: ({ inputs, backend, attrs }) => {
        const b = backend as CpuStorage;
        const { value, m, v, g } = inputs as Record<string, tf.TensorInfo>;
        const a = attrs as unknown as AdamUpdateAttrs;
        const n = size(value!.shape);
        const nv = alloc(n), nm = alloc(n), nvv = alloc(n);
        k.adamUpdate(f32(b, value!), f32(b, m!), f32(b, v!), f32(b, g!), nv, nm, nvv, Float32Array.of(a.beta1, a.oneMinusBeta1,
          a.beta2, a.oneMinusBeta2, a.oneMinusAccBeta1, a.oneMinusAccBeta2, a.epsilon, a.negLearningRate));
        return [out(b, value!.shape, nv), out(b, value!.shape, nm), out(b, value!.shape, nvv)];
      },
    },
    {
      kernelName: PRELU_GRAD_INPUT, backendName,
      kernelFunc: ({ inputs, backend }) => {
        const b = backend as CpuStorage;
        const { dy, x, alpha } = inputs as Record<string, tf.TensorInfo>;
        const dx = alloc(size(x!.shape));
        k.preluGradInput(f32(b, dy!), f32(b, x!), f32(b, alpha!), dx);
        return out(b, x!.shape, dx);
      },
    },
    {
      kernelName: PRELU_GRAD_ALPHA, backendName,
      kernelFunc: ({ inputs, backend }) => {
        const b = backend as CpuStorage;
        const { dy, x, alpha } = inputs as Record<string, tf.TensorInfo>;
        const da = new Float32Array(size(alpha!.shape));
        k.preluGradAlpha(f32(b, dy!), f32(b, x!), da);
        return out(b, alpha!.shape, da);
      },
    },
  ];
  // The kernels above that never decline (the fused training ops) are counted as native too.
  return configs.map((c) => counted.has(c) ? c : {
    ...c,
    kernelFunc: (args) => {
      const t0 = performance.now();
      const r = c.kernelFunc(args);
      countNative(c.kernelName, performance.now() - t0);
      return r;
    },
  });
}
