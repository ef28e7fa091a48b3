/**
 * Gradient kernels that @tensorflow/tfjs-backend-wasm 4.22 lacks, so that conv nets can be trained on wasm.
 *
 * Each kernel is re-expressed with ops wasm already has (conv2d, depthwiseConv2d, matMul, pad, slice, …) instead
 * of bridging to the cpu backend: the cpu kernels are naive JS loops (backend-notes §1.2: 113 s against 2.2 s per
 * step). Semantics follow the cpu reference kernels in @tensorflow/tfjs-backend-cpu (same convInfo, same padding,
 * same handling of rows the forward conv never read). Supported: NHWC, dilation 1, any stride, 'same' / 'valid' /
 * numeric / explicit padding, dimRoundingMode, and channel multiplier 1 for the depthwise kernels. Other cases throw.
 */
import * as tf from '@tensorflow/tfjs';

type Pair = [number, number];
type Kernel = tf.KernelConfig['kernelFunc'];

export const WASM_GRAD_KERNELS: readonly string[] = Object.freeze([
  tf.Conv2DBackpropFilter,
  tf.DepthwiseConv2dNativeBackpropFilter,
  tf.DepthwiseConv2dNativeBackpropInput,
]);

const BACKEND = 'wasm';

function pair(v: number | number[] | undefined, dflt = 1): Pair {
  if (v == null) return [dflt, dflt];
  if (typeof v === 'number') return [v, v];
  return [v[0], v.length > 1 ? v[1] : v[0]];
}

function fail(kernel: string, what: string): never {
  throw new Error(`wasm gradient kernel ${kernel}: ${what} is not supported (facedistill core/backends/wasm-grad-kernels.ts)`);
}

/** tfjs-core's gradients never pass dilation > 1 today; reject it explicitly rather than compute something wrong. */
function checkDilations(kernel: string, dilations: number | number[] | undefined, strides: Pair): void {
  const d = pair(dilations);
  if (d[0] === 1 && d[1] === 1) return;
  if (strides[0] > 1 || strides[1] > 1) fail(kernel, `stride ${strides} together with dilation ${d}`);
  fail(kernel, `dilation ${d} (only dilation 1)`);
}

function checkRank4(kernel: string, name: string, shape: number[]): void {
  if (shape.length !== 4) fail(kernel, `${name} of rank ${shape.length} (only rank 4, NHWC)`);
}

function checkFloat(kernel: string, ...infos: tf.TensorInfo[]): void {
  for (const t of infos) if (t.dtype !== 'float32') fail(kernel, `dtype ${t.dtype} (only float32)`);
}

/**
 * Wraps a kernel input as a Tensor without copying. The extra backend ref keeps the input alive when the
 * wrapper is disposed (the caller still owns it).
 */
function wrap(info: tf.TensorInfo, backend: tf.KernelBackend): tf.Tensor4D {
  backend.incRef(info.dataId);
  return tf.engine().makeTensorFromTensorInfo(info, backend) as tf.Tensor4D;
}

/**
 * Hands a tensor computed inside the kernel to the engine as the kernel's output: the engine wraps the returned
 * TensorInfo in a new tensor without taking a ref, so we add one and drop the temporary tensor, leaving exactly
 * one ref (the engine's output tensor) and no extra tracked tensor.
 */
function release(t: tf.Tensor, backend: tf.KernelBackend): tf.TensorInfo {
  backend.incRef(t.dataId);
  const info: tf.TensorInfo = { dataId: t.dataId, shape: t.shape.slice(), dtype: t.dtype };
  t.dispose();
  return info;
}

/**
 * Spatial window of t: output row i is input row i - before (zero outside the input), output length len; same for
 * columns. Pads where before/len reach outside, slices where they cut inside (negative before, unused tail rows).
 */
function spatialWindow(t: tf.Tensor4D, beforeH: number, lenH: number, beforeW: number, lenW: number): tf.Tensor4D {
  const [, h, w] = t.shape;
  const pT = Math.max(0, beforeH), pB = Math.max(0, lenH - beforeH - h);
  const pL = Math.max(0, beforeW), pR = Math.max(0, lenW - beforeW - w);
  let r = pT || pB || pL || pR ? tf.pad(t, [[0, 0], [pT, pB], [pL, pR], [0, 0]]) : t;
  const oT = Math.max(0, -beforeH), oL = Math.max(0, -beforeW);
  if (oT || oL || r.shape[1] !== lenH || r.shape[2] !== lenW) r = tf.slice(r, [0, oT, oL, 0], [-1, lenH, lenW, -1]);
  return r;
}

/** Every stride-th row/column of the window: the input pixels a 1×1 filter saw. */
function subsample(t: tf.Tensor4D, s: Pair): tf.Tensor4D {
  if (s[0] === 1 && s[1] === 1) return t;
  const [n, h, w, c] = t.shape;
  return tf.stridedSlice(t, [0, 0, 0, 0], [n, h, w, c], [1, s[0], s[1], 1]) as tf.Tensor4D;
}

/**
 * dW[kh,kw,ci,co] = Σ_{n,oh,ow} xpad[n, oh·sh+kh, ow·sw+kw, ci] · dy[n,oh,ow,co].
 * 1×1: one matMul over the subsampled input (explicit transpose: ~10× faster than transposeA on wasm).
 * k×k: one conv2d with the batch axis as reduction axis: input xpad as [ci, Hp, Wp, n], kernel dy as
 * [oh, ow, n, co], the forward stride as dilation; the valid output [ci, kh, kw, co] is dW up to a transpose.
 */
const conv2DBackpropFilter: Kernel = ({ inputs, backend, attrs }) => {
  const name = tf.Conv2DBackpropFilter;
  const { x, dy } = inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const a = attrs as unknown as tf.Conv2DBackpropFilterAttrs & { dilations?: number | Pair };
  const be = backend as tf.KernelBackend;
  if (a.dataFormat != null && a.dataFormat !== 'NHWC') fail(name, `dataFormat ${a.dataFormat} (only NHWC)`);
  checkRank4(name, 'x', x.shape);
  checkRank4(name, 'dy', dy.shape);
  checkFloat(name, x, dy);
  const strides = pair(a.strides);
  checkDilations(name, a.dilations, strides);
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number], a.filterShape, a.strides, 1, a.pad, a.dimRoundingMode, false,
    'channelsLast');
  const { batchSize: n, inChannels: ci, outChannels: co, filterHeight: kh, filterWidth: kw, outHeight: oh,
    outWidth: ow, padInfo } = info;
  if (dy.shape[0] !== n || dy.shape[1] !== oh || dy.shape[2] !== ow || dy.shape[3] !== co) {
    fail(name, `dy shape [${dy.shape}] for expected output shape [${n},${oh},${ow},${co}]`);
  }
  const out = tf.tidy(() => {
    if (n * oh * ow === 0) return tf.zeros(a.filterShape);
    const xt = wrap(x, be), dyt = wrap(dy, be);
    const xp = spatialWindow(xt, padInfo.top, (oh - 1) * strides[0] + kh, padInfo.left, (ow - 1) * strides[1] + kw);
    if (kh === 1 && kw === 1) {
      const x2 = tf.reshape(subsample(xp, strides), [n * oh * ow, ci]);
      return tf.reshape(tf.matMul(tf.transpose(x2), tf.reshape(dyt, [n * oh * ow, co])), [1, 1, ci, co]);
    }
    const g = tf.conv2d(tf.transpose(xp, [3, 1, 2, 0]) as tf.Tensor4D, tf.transpose(dyt, [1, 2, 0, 3]) as tf.Tensor4D,
      1, 'valid', 'NHWC', strides);
    return tf.transpose(g, [1, 2, 0, 3]);
  });
  return release(out, be);
};

/**
 * Depthwise dW[kh,kw,c,0] = Σ_{n,oh,ow} xpad[n, oh·sh+kh, ow·sw+kw, c] · dy[n,oh,ow,c].
 * One depthwiseConv2d with (n, c) folded into the channel axis (input [1, Hp, Wp, n·c], kernel dy as
 * [oh, ow, n·c, 1], forward stride as dilation), then a sum over n.
 */
const depthwiseBackpropFilter: Kernel = ({ inputs, backend, attrs }) => {
  const name = tf.DepthwiseConv2dNativeBackpropFilter;
  const { x, dy } = inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const a = attrs as unknown as tf.DepthwiseConv2dNativeBackpropFilterAttrs;
  const be = backend as tf.KernelBackend;
  checkRank4(name, 'x', x.shape);
  checkRank4(name, 'dy', dy.shape);
  checkFloat(name, x, dy);
  const strides = pair(a.strides);
  checkDilations(name, a.dilations, strides);
  if (a.filterShape[3] !== 1) fail(name, `channel multiplier ${a.filterShape[3]} (only 1)`);
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number], a.filterShape, a.strides, 1, a.pad, a.dimRoundingMode, true);
  const { batchSize: n, inChannels: c, filterHeight: kh, filterWidth: kw, outHeight: oh, outWidth: ow, padInfo } = info;
  if (dy.shape[0] !== n || dy.shape[1] !== oh || dy.shape[2] !== ow || dy.shape[3] !== c) {
    fail(name, `dy shape [${dy.shape}] for expected output shape [${n},${oh},${ow},${c}]`);
  }
  const out = tf.tidy(() => {
    if (n * oh * ow === 0) return tf.zeros(a.filterShape);
    const xt = wrap(x, be), dyt = wrap(dy, be);
    const hp = (oh - 1) * strides[0] + kh, wp = (ow - 1) * strides[1] + kw;
    const xp = spatialWindow(xt, padInfo.top, hp, padInfo.left, wp);
    if (kh === 1 && kw === 1) {
      return tf.reshape(tf.sum(tf.mul(subsample(xp, strides), dyt), [0, 1, 2]), [1, 1, c, 1]);
    }
    const inp = n === 1 ? xp : tf.transpose(xp, [1, 2, 0, 3]);
    const ker = n === 1 ? dyt : tf.transpose(dyt, [1, 2, 0, 3]);
    const g = tf.depthwiseConv2d(tf.reshape(inp, [1, hp, wp, n * c]) as tf.Tensor4D,
      tf.reshape(ker, [oh, ow, n * c, 1]) as tf.Tensor4D, 1, 'valid', 'NHWC', strides);
    return tf.reshape(n === 1 ? g : tf.sum(tf.reshape(g, [kh, kw, n, c]), 2), [kh, kw, c, 1]);
  });
  return release(out, be);
};

/**
 * Depthwise dx[n,h,w,c] = Σ_{kh,kw} dyz[n, h+top-kh, w+left-kw, c] · f[kh,kw,c,0], where dyz is dy zero-dilated by
 * the stride: a correlation of the zero-dilated, padded dy with the spatially flipped filter, cropped to the input.
 */
const depthwiseBackpropInput: Kernel = ({ inputs, backend, attrs }) => {
  const name = tf.DepthwiseConv2dNativeBackpropInput;
  const { dy, filter } = inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
  const a = attrs as unknown as tf.DepthwiseConv2dNativeBackpropInputAttrs;
  const be = backend as tf.KernelBackend;
  checkRank4(name, 'dy', dy.shape);
  checkRank4(name, 'filter', filter.shape);
  checkRank4(name, 'inputShape', a.inputShape);
  checkFloat(name, dy, filter);
  const strides = pair(a.strides);
  checkDilations(name, a.dilations, strides);
  if (filter.shape[3] !== 1) fail(name, `channel multiplier ${filter.shape[3]} (only 1)`);
  const info = tf.backend_util.computeConv2DInfo(
    a.inputShape, filter.shape as [number, number, number, number], a.strides, 1, a.pad, a.dimRoundingMode, true);
  const { batchSize: n, inHeight: h, inWidth: w, inChannels: c, filterHeight: kh, filterWidth: kw, outHeight: oh,
    outWidth: ow, padInfo } = info;
  if (dy.shape[0] !== n || dy.shape[1] !== oh || dy.shape[2] !== ow || dy.shape[3] !== c) {
    fail(name, `dy shape [${dy.shape}] for expected output shape [${n},${oh},${ow},${c}]`);
  }
  const out = tf.tidy(() => {
    if (n * oh * ow === 0) return tf.zeros(a.inputShape);
    const dyt = wrap(dy, be), ft = wrap(filter, be);
    const [sh, sw] = strides;
    // Zero-dilate: [n·oh, 1, ow, 1, c] padded to [n·oh, sh, ow, sw, c] = [n, oh·sh, ow·sw, c] (trailing zeros are harmless).
    const dz = sh === 1 && sw === 1 ? dyt : tf.reshape(
      tf.pad(tf.reshape(dyt, [n * oh, 1, ow, 1, c]), [[0, 0], [0, sh - 1], [0, 0], [0, sw - 1], [0, 0]]),
      [n, oh * sh, ow * sw, c]) as tf.Tensor4D;
    const q = spatialWindow(dz, kh - 1 - padInfo.top, h + kh - 1, kw - 1 - padInfo.left, w + kw - 1);
    return tf.depthwiseConv2d(q, tf.reverse(ft, [0, 1]) as tf.Tensor4D, 1, 'valid');
  });
  return release(out, be);
};

const CONFIGS: readonly tf.KernelConfig[] = [
  { kernelName: tf.Conv2DBackpropFilter, backendName: BACKEND, kernelFunc: conv2DBackpropFilter },
  { kernelName: tf.DepthwiseConv2dNativeBackpropFilter, backendName: BACKEND, kernelFunc: depthwiseBackpropFilter },
  { kernelName: tf.DepthwiseConv2dNativeBackpropInput, backendName: BACKEND, kernelFunc: depthwiseBackpropInput },
];

/**
 * Registers the missing gradient kernels for 'wasm'. Idempotent, and leaves alone any kernel already registered
 * (a future tfjs-backend-wasm that ships its own, or a caller's override).
 */
export function registerWasmGradKernels(): void {
  for (const cfg of CONFIGS) {
    if (tf.getKernel(cfg.kernelName, cfg.backendName) == null) tf.registerKernel(cfg);
  }
}
