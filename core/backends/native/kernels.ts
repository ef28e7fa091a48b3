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

const nativeConv = (c: tf.backend_util.Conv2DInfo) =>
  c.dataFormat === 'channelsLast' && c.dilationHeight === 1 && c.dilationWidth === 1;

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
  const kernel = (kernelName: string, run: (inputs: Inputs, b: CpuStorage, attrs: Attrs) => tf.TensorInfo | tf.TensorInfo[] | null): tf.KernelConfig => {
    const fallback = reference(kernelName);
    return {
      kernelName, backendName,
      kernelFunc: (args) => run(args.inputs, args.backend as CpuStorage, args.attrs ?? {}) ?? fallback(args),
    };
  };

  const binaryKernel = (name: string, op: number) => kernel(name, (inputs, b) => {
    const { a, b: bb } = inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    if (!isF32(a, bb)) return null;
    const shape = tf.backend_util.assertAndGetBroadcastShape(a.shape, bb.shape);
    if (!repeatsAlongLeadingAxes(a.shape, shape) || !repeatsAlongLeadingAxes(bb.shape, shape)) return null;
    const o = alloc(size(shape));
    k.binary(op, f32(b, a), f32(b, bb), o);
    return out(b, shape, o);
  });

  const unaryKernel = (name: string, op: number) => kernel(name, (inputs, b) => {
    const { x } = inputs as { x: tf.TensorInfo };
    if (!isF32(x)) return null;
    const o = alloc(size(x.shape));
    k.unary(op, f32(b, x), o);
    return out(b, x.shape, o);
  });

  const reduceKernel = (name: string, mean: boolean) => kernel(name, (inputs, b, attrs) => {
    const { x } = inputs as { x: tf.TensorInfo };
    const { axis, keepDims } = attrs as { axis: number | number[]; keepDims: boolean };
    if (!isF32(x)) return null;
    const axes = tf.util.parseAxisParam(axis, x.shape).sort((p, q) => p - q);
    if (axes.length === 0 || axes.some((a, i) => i > 0 && a !== axes[i - 1]! + 1)) return null; // contiguous axes only
    const first = axes[0]!, last = axes.at(-1)!;
    const outer = size(x.shape.slice(0, first)), mid = size(x.shape.slice(first, last + 1)), inner = size(x.shape.slice(last + 1));
    if (mid === 0) return null;
    const reduced = x.shape.filter((_, i) => !axes.includes(i));
    const shape = keepDims ? tf.backend_util.expandShapeToKeepDim(reduced, axes) : reduced;
    const o = alloc(outer * inner);
    k.reduceSum(f32(b, x), o, outer, mid, inner, mean ? 1 / mid : 1);
    return out(b, shape, o);
  });

  const convKernel = (name: string, run: (inputs: Inputs, b: CpuStorage, a: ConvAttrs) => tf.TensorInfo | null) =>
    kernel(name, (inputs, b, attrs) => run(inputs, b, attrs as unknown as ConvAttrs));

  return [
    convKernel(tf.Conv2D, ({ x, filter }, b, a) => {
      if (!isF32(x, filter)) return null;
      const c = tf.backend_util.computeConv2DInfo(x!.shape as [number, number, number, number], filter!.shape as [number, number, number, number],
        a.strides, a.dilations ?? 1, a.pad, a.dimRoundingMode, false, fmt(a.dataFormat));
      if (!nativeConv(c)) return null;
      const o = alloc(size(c.outShape));
      k.conv2d(f32(b, x!), f32(b, filter!), o, geometry(c));
      return out(b, c.outShape, o);
    }),
    // FusedConv2D without bias / activation is what tf.layers.conv2d(useBias: false) runs.
    convKernel(tf.FusedConv2D, ({ x, filter, bias }, b, a) => {
      if (bias || (a.activation && a.activation !== 'linear') || !isF32(x, filter)) return null;
      const c = tf.backend_util.computeConv2DInfo(x!.shape as [number, number, number, number], filter!.shape as [number, number, number, number],
        a.strides, a.dilations ?? 1, a.pad, a.dimRoundingMode, false, fmt(a.dataFormat));
      if (!nativeConv(c)) return null;
      const o = alloc(size(c.outShape));
      k.conv2d(f32(b, x!), f32(b, filter!), o, geometry(c));
      return out(b, c.outShape, o);
    }),
    convKernel(tf.Conv2DBackpropInput, ({ dy, filter }, b, a) => {
      if (!isF32(dy, filter)) return null;
      const c = tf.backend_util.computeConv2DInfo(a.inputShape!, filter!.shape as [number, number, number, number], a.strides, 1, a.pad,
        a.dimRoundingMode, false, fmt(a.dataFormat));
      if (!nativeConv(c)) return null;
      const o = alloc(size(c.inShape));
      k.conv2dBackpropInput(f32(b, dy!), f32(b, filter!), o, geometry(c));
      return out(b, [...a.inputShape!], o);
    }),
    convKernel(tf.Conv2DBackpropFilter, ({ x, dy }, b, a) => {
      if (!isF32(x, dy)) return null;
      const c = tf.backend_util.computeConv2DInfo(x!.shape as [number, number, number, number], a.filterShape!, a.strides, 1, a.pad,
        a.dimRoundingMode, false, fmt(a.dataFormat));
      if (!nativeConv(c)) return null;
      const o = alloc(size(a.filterShape!));
      k.conv2dBackpropFilter(f32(b, x!), f32(b, dy!), o, geometry(c));
      return out(b, [...a.filterShape!], o);
    }),
    convKernel(tf.DepthwiseConv2dNative, ({ x, filter }, b, a) => {
      if (!isF32(x, filter)) return null;
      const c = tf.backend_util.computeConv2DInfo(x!.shape as [number, number, number, number], filter!.shape as [number, number, number, number],
        a.strides, a.dilations ?? 1, a.pad, a.dimRoundingMode, true);
      if (!nativeConv(c) || c.outChannels !== c.inChannels) return null;
      const o = alloc(size(c.outShape));
      k.depthwise(f32(b, x!), f32(b, filter!), o, geometry(c));
      return out(b, c.outShape, o);
    }),
    convKernel(tf.DepthwiseConv2dNativeBackpropInput, ({ dy, filter }, b, a) => {
      if (!isF32(dy, filter)) return null;
      const c = tf.backend_util.computeConv2DInfo(a.inputShape!, filter!.shape as [number, number, number, number], a.strides,
        a.dilations ?? 1, a.pad, a.dimRoundingMode, true);
      if (!nativeConv(c) || c.outChannels !== c.inChannels) return null;
      const o = alloc(size(c.inShape));
      k.depthwiseBackpropInput(f32(b, dy!), f32(b, filter!), o, geometry(c));
      return out(b, [...a.inputShape!], o);
    }),
    convKernel(tf.DepthwiseConv2dNativeBackpropFilter, ({ x, dy }, b, a) => {
      if (!isF32(x, dy)) return null;
      const c = tf.backend_util.computeConv2DInfo(x!.shape as [number, number, number, number], a.filterShape!, a.strides,
        a.dilations ?? 1, a.pad, a.dimRoundingMode, true);
      if (!nativeConv(c) || c.outChannels !== c.inChannels) return null;
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
    kernel(tf.Greater, (inputs, b) => {
      const { a, b: bb } = inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
      if (!isF32(a, bb)) return null;
      const shape = tf.backend_util.assertAndGetBroadcastShape(a.shape, bb.shape);
      if (!repeatsAlongLeadingAxes(a.shape, shape) || !repeatsAlongLeadingAxes(bb.shape, shape)) return null;
      const o = new Uint8Array(size(shape));
      k.greater(f32(b, a), f32(b, bb), o);
      return out(b, shape, o, 'bool');
    }),
    kernel(tf.Select, (inputs, b) => {
      const { condition, t, e } = inputs as { condition: tf.TensorInfo; t: tf.TensorInfo; e: tf.TensorInfo };
      if (condition.dtype !== 'bool' || !isF32(t, e) || !tf.util.arraysEqual(condition.shape, t.shape) || !tf.util.arraysEqual(t.shape, e.shape)) return null;
      const o = alloc(size(t.shape));
      k.select(b.data.get(condition.dataId).values as Uint8Array, f32(b, t), f32(b, e), o);
      return out(b, t.shape, o);
    }),
    reduceKernel(tf.Sum, false),
    reduceKernel(tf.Mean, true),
    kernel(tf.FusedBatchNorm, (inputs, b, attrs) => {
      const { x, mean, variance, offset, scale } = inputs as Record<string, tf.TensorInfo | undefined>;
      if (!isF32(x, mean, variance, offset, scale)) return null;
      const C = x!.shape.at(-1)!;
      const fits = (t?: tf.TensorInfo) => !t || (repeatsAlongLeadingAxes(t.shape, [C]) && (size(t.shape) === C || size(t.shape) === 1));
      if (![mean, variance, offset, scale].every(fits)) return null;
      const o = alloc(size(x!.shape));
      k.batchNorm(f32(b, x!), f32(b, mean!), f32(b, variance!), offset ? f32(b, offset) : null, scale ? f32(b, scale) : null, o,
        (attrs as { varianceEpsilon: number }).varianceEpsilon);
      return out(b, x!.shape, o);
    }),
    kernel(tf.Prelu, (inputs, b) => {
      const { x, alpha } = inputs as { x: tf.TensorInfo; alpha: tf.TensorInfo };
      if (!isF32(x, alpha) || !repeatsAlongLeadingAxes(alpha.shape, x.shape)) return null;
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
}
