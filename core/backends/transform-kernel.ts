/**
 * A correct `Transform` kernel (tf.image.transform) for the pure-JS `cpu` backend and for `cpu-native`, which
 * inherits cpu's kernels.
 *
 * tfjs-backend-cpu 4.22's own kernel returns from inside its batch loop, so only the first image of a batch is
 * warped and the rest stay at the fill value (all zeros for 5-point alignment); its fall-through path also reports
 * the input's shape instead of the output's. This one warps every image, with the per-pixel arithmetic of
 * TensorFlow's `image_ops.h` (and of tfjs's kernel for one image): projective map of the output pixel, coordinate
 * mapping by fill mode, nearest or bilinear sampling with out-of-range neighbours read as the fill value.
 */
import * as tf from '@tensorflow/tfjs';
import { NATIVE_BACKEND } from './native/backend.js';

type FillMode = 'constant' | 'reflect' | 'wrap' | 'nearest';
interface TransformAttrs { interpolation: 'nearest' | 'bilinear'; fillMode: FillMode; fillValue: number; outputShape?: [number, number] | null }
interface CpuData { data: { get(id: tf.DataId): { values: tf.backend_util.BackendValues } }; makeTensorInfo(s: number[], d: tf.DataType, v?: tf.backend_util.BackendValues): tf.TensorInfo }

const clamp = (v: number, lo: number, hi: number) => Math.min(Math.max(v, lo), hi);

/** Maps an input coordinate outside [0, len − 1] by the fill mode (TensorFlow's `map_coord`). */
function mapCoord(c: number, len: number, mode: FillMode): number {
  if (mode === 'constant') return c;
  if (mode === 'nearest') return clamp(c, 0, len - 1);
  if (len <= 1) return 0;
  if (mode === 'reflect') {
    // [abcd] → [dcba|abcd|dcba]
    if (c < 0) {
      const sz2 = 2 * len;
      if (c < sz2) c = sz2 * Math.trunc(-c / sz2) + c;
      c = c < -len ? c + sz2 : -c - 1;
    } else if (c > len - 1) {
      const sz2 = 2 * len;
      c -= sz2 * Math.trunc(c / sz2);
      if (c >= len) c = sz2 - c - 1;
    }
    return clamp(c, 0, len - 1);
  }
  // wrap: [abcd] → [abcd|abcd|abcd]
  const sz = len - 1;
  if (c < 0) c += len * (Math.trunc(-c / sz) + 1);
  else if (c > len - 1) c -= len * Math.trunc(c / sz);
  return clamp(c, 0, len - 1);
}

/** Warps `image` [N, H, W, C] by `transforms` [1 or N, 8] (output → input maps) to [N, oh, ow, C]. */
export function transformImages(image: tf.backend_util.TypedArray, shape: readonly number[], transforms: tf.backend_util.TypedArray,
  perImage: boolean, a: TransformAttrs, out: tf.backend_util.TypedArray): void {
  const [batch, ih, iw, nc] = shape as [number, number, number, number];
  const [oh, ow] = a.outputShape ?? [ih, iw];
  const fill = a.fillValue, bilinear = a.interpolation === 'bilinear';
  if (!bilinear && a.interpolation !== 'nearest') throw new Error(`Transform: interpolation must be 'nearest' or 'bilinear', got '${a.interpolation}'`);
  const rowIn = iw * nc, batchIn = ih * rowIn, batchOut = oh * ow * nc;
  const read = (base: number, y: number, x: number, ch: number) =>
    (y >= 0 && y < ih && x >= 0 && x < iw) ? image[base + y * rowIn + x * nc + ch]! : fill;
  for (let b = 0; b < batch; b++) {
    const t = perImage ? b * 8 : 0;
    const [t0, t1, t2, t3, t4, t5, t6, t7] = [0, 1, 2, 3, 4, 5, 6, 7].map((i) => transforms[t + i]!) as number[];
    const inBase = b * batchIn;
    let o = b * batchOut;
    for (let oy = 0; oy < oh; oy++) {
      for (let ox = 0; ox < ow; ox++, o += nc) {
        const proj = t6! * ox + t7! * oy + 1;
        if (proj === 0) { for (let ch = 0; ch < nc; ch++) out[o + ch] = fill; continue; }
        const x = mapCoord((t0! * ox + t1! * oy + t2!) / proj, iw, a.fillMode);
        const y = mapCoord((t3! * ox + t4! * oy + t5!) / proj, ih, a.fillMode);
        if (!bilinear) {
          const ry = Math.round(y), rx = Math.round(x);
          for (let ch = 0; ch < nc; ch++) out[o + ch] = read(inBase, ry, rx, ch);
          continue;
        }
        const y0 = Math.floor(y), x0 = Math.floor(x), y1 = y0 + 1, x1 = x0 + 1;
        if (y0 >= 0 && y1 < ih && x0 >= 0 && x1 < iw) {
          // All four neighbours inside (most pixels): direct reads, the same arithmetic as below.
          const p00 = inBase + y0 * rowIn + x0 * nc, p01 = p00 + nc, p10 = p00 + rowIn, p11 = p10 + nc;
          const wx1 = x1 - x, wx0 = x - x0, wy1 = y1 - y, wy0 = y - y0;
          for (let ch = 0; ch < nc; ch++) {
            out[o + ch] = wy1 * (wx1 * image[p00 + ch]! + wx0 * image[p01 + ch]!) + wy0 * (wx1 * image[p10 + ch]! + wx0 * image[p11 + ch]!);
          }
          continue;
        }
        for (let ch = 0; ch < nc; ch++) {
          const top = (x1 - x) * read(inBase, y0, x0, ch) + (x - x0) * read(inBase, y0, x1, ch);
          const bottom = (x1 - x) * read(inBase, y1, x0, ch) + (x - x0) * read(inBase, y1, x1, ch);
          out[o + ch] = (y1 - y) * top + (y - y0) * bottom;
        }
      }
    }
  }
}

const transformKernelFunc: tf.KernelConfig['kernelFunc'] = ({ inputs, backend, attrs }) => {
  const { image, transforms } = inputs as { image: tf.TensorInfo; transforms: tf.TensorInfo };
  const a = attrs as unknown as TransformAttrs;
  const b = backend as unknown as CpuData;
  const [n, ih, iw, nc] = image.shape as [number, number, number, number];
  const [oh, ow] = a.outputShape ?? [ih, iw];
  const outShape = [n, oh, ow, nc];
  const out = tf.util.getTypedArrayFromDType(image.dtype as 'float32' | 'int32', n * oh * ow * nc);
  transformImages(b.data.get(image.dataId).values as tf.backend_util.TypedArray, image.shape, b.data.get(transforms.dataId).values as tf.backend_util.TypedArray,
    transforms.shape[0] !== 1, a, out);
  return b.makeTensorInfo(outShape, image.dtype, out);
};

/**
 * Registers the kernel above for `cpu` and `cpu-native` (idempotent; cheap to call before every use). `cpu-native`
 * copies cpu's kernels when it is registered, so both names are set whichever was registered first.
 */
export function registerTransformKernels(): void {
  for (const backendName of ['cpu', NATIVE_BACKEND]) {
    // A backend registered later copies cpu's kernel; registering ahead of it would make tfjs warn of a duplicate.
    if (backendName !== 'cpu' && !tf.findBackendFactory(backendName)) continue;
    if (tf.getKernel(tf.Transform, backendName)?.kernelFunc === transformKernelFunc) continue;
    if (tf.getKernel(tf.Transform, backendName)) tf.unregisterKernel(tf.Transform, backendName);
    tf.registerKernel({ kernelName: tf.Transform, backendName, kernelFunc: transformKernelFunc });
  }
}
