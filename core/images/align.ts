import * as tf from '@tensorflow/tfjs';
import { registerTransformKernels } from '../backends/transform-kernel.js';

/** A point (x, y) in pixel coordinates; pixel centres at integers. */
export type Point = readonly [number, number];

/**
 * ArcFace 112×112 template (insightface `face_align.py` `arcface_dst`): image-left eye,
 * image-right eye, nose tip, left mouth corner, right mouth corner (strategy-specs §7.9).
 */
export const ARCFACE_TEMPLATE: readonly Point[] = [
  [38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041],
];

/** The template for another output size (`estimate_norm`): ×size/112, or ×size/128 with x + 8·size/128. */
export function templateFor(size: number): Point[] {
  if (size % 112 === 0) return ARCFACE_TEMPLATE.map(([x, y]) => [(x * size) / 112, (y * size) / 112]);
  if (size % 128 === 0) return ARCFACE_TEMPLATE.map(([x, y]) => [(x * size) / 128 + (8 * size) / 128, (y * size) / 128]);
  throw new Error(`alignment size ${size} is neither a multiple of 112 nor of 128`);
}

/** M = [[a, −b, tx], [b, a, ty]]: the least-squares similarity (Umeyama, no reflection) src → dst. */
export function similarityTransform(src: readonly Point[], dst: readonly Point[]): [number, number, number, number, number, number] {
  if (src.length !== dst.length || src.length < 2) throw new Error('similarityTransform needs ≥ 2 matching points');
  const n = src.length;
  const mean = (ps: readonly Point[]) => [ps.reduce((s, p) => s + p[0], 0) / n, ps.reduce((s, p) => s + p[1], 0) / n] as const;
  const [px, py] = mean(src), [qx, qy] = mean(dst);
  let sxx = 0, num_a = 0, num_b = 0;
  for (let i = 0; i < n; i++) {
    const ux = src[i]![0] - px, uy = src[i]![1] - py;
    const xx = dst[i]![0] - qx, xy = dst[i]![1] - qy;
    sxx += ux * ux + uy * uy;
    num_a += ux * xx + uy * xy;
    num_b += ux * xy - uy * xx;
  }
  if (sxx < 1e-6) throw new Error('degenerate landmarks (all points coincide): face rejected');
  const a = num_a / sxx, b = num_b / sxx;
  return [a, -b, qx - (a * px - b * py), b, a, qy - (b * px + a * py)];
}

/** The inverse (output → input) map of M, as tf.image.transform wants it. */
export function inverseSimilarity(m: readonly number[]): [number, number, number, number, number, number, number, number] {
  const [a, , tx, b, , ty] = m as [number, number, number, number, number, number];
  const det = a * a + b * b; // M's linear part is [[a, −b], [b, a]]
  const ia = a / det, ib = b / det; // inverse linear part [[ia, ib], [−ib, ia]]
  return [ia, ib, -(ia * tx + ib * ty), -ib, ia, -(-ib * tx + ia * ty), 0, 0];
}

/**
 * Warps each image so its 5 landmarks land on the template: bilinear, 0 outside
 * (cv2.warpAffine(img, M, (size, size), borderValue=0)). images: [N, H, W, 3].
 */
export function alignFaces(images: tf.Tensor4D, landmarks: readonly (readonly Point[])[], size = 112, dst: readonly Point[] = templateFor(size)): tf.Tensor4D {
  const transforms = landmarks.map((lm) => inverseSimilarity(similarityTransform(lm, dst)));
  registerTransformKernels();
  return tf.tidy(() => tf.image.transform(images, tf.tensor2d(transforms.flat(), [transforms.length, 8]), 'bilinear', 'constant', 0, [size, size]));
}

/** 68-point (dlib/iBUG) landmarks → the 5 points: eye centres (36+39)/2, (42+45)/2, nose 30, mouth 48, 54. */
export function fivePointsFrom68(p: readonly Point[]): Point[] {
  const mid = (i: number, j: number): Point => [(p[i]![0] + p[j]![0]) / 2, (p[i]![1] + p[j]![1]) / 2];
  return [mid(36, 39), mid(42, 45), p[30]!, p[48]!, p[54]!];
}
