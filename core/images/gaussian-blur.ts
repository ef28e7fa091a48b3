import * as tf from '@tensorflow/tfjs';

/**
 * Normalised 1-D Gaussian weights g_i ∝ exp(−i²/(2σ²)), i = −h..h, with the kernel size
 * 2⌈3σ⌉ + 1 clamped to at most `maxSize` (kept odd), so a large σ on a small image still works.
 */
export function gaussianKernel(sigma: number, maxSize = Infinity): Float32Array {
  if (!(sigma > 0)) throw new Error(`gaussian kernel: σ must be > 0, got ${sigma}`);
  let size = 2 * Math.ceil(3 * sigma) + 1;
  if (size > maxSize) size = Math.max(1, maxSize % 2 === 1 ? maxSize : maxSize - 1);
  const h = (size - 1) / 2;
  const w = Array.from({ length: size }, (_, i) => Math.exp(-((i - h) ** 2) / (2 * sigma * sigma)));
  const sum = w.reduce((a, b) => a + b, 0);
  return Float32Array.from(w, (v) => v / sum);
}

/**
 * Separable Gaussian blur of [N, H, W, C] images, reflect-101 borders (OpenCV's default,
 * numpy `np.pad(mode='reflect')`). The kernel is clamped to the smaller image side.
 */
export function gaussianBlur(images: tf.Tensor4D, sigma: number): tf.Tensor4D {
  const [, h, w, c] = images.shape;
  const k = gaussianKernel(sigma, Math.min(h, w));
  const half = (k.length - 1) / 2;
  if (half === 0) return images.clone();
  return tf.tidy(() => {
    const padded = tf.mirrorPad(images, [[0, 0], [half, half], [half, half], [0, 0]], 'reflect');
    // Depthwise filters: the same taps for every channel, [k, 1, C, 1] and [1, k, C, 1].
    const taps = Array.from(k).flatMap((v) => Array.from({ length: c }, () => v));
    const vertical = tf.tensor4d(taps, [k.length, 1, c, 1]);
    const horizontal = tf.tensor4d(taps, [1, k.length, c, 1]);
    const rows = tf.depthwiseConv2d(padded, vertical, 1, 'valid');
    return tf.depthwiseConv2d(rows, horizontal, 1, 'valid') as tf.Tensor4D;
  });
}
