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
  return warpFaces(images, landmarks.map((lm) => inverseSimilarity(similarityTransform(lm, dst))), size);
}

/** Warps images[i] by the output → input map transforms[i] (8 numbers, tf.image.transform's) to size×size; bilinear, 0 outside. */
export function warpFaces(images: tf.Tensor4D, transforms: readonly (readonly number[])[], size: number): tf.Tensor4D {
  registerTransformKernels();
  return tf.tidy(() => tf.image.transform(images, tf.tensor2d(transforms.flat(), [transforms.length, 8]), 'bilinear', 'constant', 0, [size, size]));
}

/**
 * dlib's mean face shape for landmarks 17–67 in a unit square (dlib `get_face_chip_details`, image_transforms/
 * interpolation.h), the frame dlib's face-recognition ResNet was trained on (`get_face_chip_details(shape, 150, 0.25)`).
 */
const DLIB_MEAN_FACE_X = [
  0.000213256, 0.0752622, 0.18113, 0.29077, 0.393397, 0.586856, 0.689483, 0.799124, 0.904991, 0.98004, 0.490127, 0.490127,
  0.490127, 0.490127, 0.36688, 0.426036, 0.490127, 0.554217, 0.613373, 0.121737, 0.187122, 0.265825, 0.334606, 0.260918,
  0.182743, 0.645647, 0.714428, 0.793132, 0.858516, 0.79751, 0.719335, 0.254149, 0.340985, 0.428858, 0.490127, 0.551395,
  0.639268, 0.726104, 0.642159, 0.556721, 0.490127, 0.423532, 0.338094, 0.290379, 0.428096, 0.490127, 0.552157, 0.689874,
  0.553364, 0.490127, 0.42689,
];
const DLIB_MEAN_FACE_Y = [
  0.106454, 0.038915, 0.0187482, 0.0344891, 0.0773906, 0.0773906, 0.0344891, 0.0187482, 0.038915, 0.106454, 0.203352, 0.307009,
  0.409805, 0.515625, 0.587326, 0.609345, 0.628106, 0.609345, 0.587326, 0.216423, 0.178758, 0.179852, 0.231733, 0.245099,
  0.244077, 0.231733, 0.179852, 0.178758, 0.216423, 0.244077, 0.245099, 0.780233, 0.745405, 0.727388, 0.742578, 0.727388,
  0.745405, 0.780233, 0.864805, 0.902192, 0.909281, 0.902192, 0.864805, 0.784792, 0.778746, 0.785343, 0.778746, 0.784792,
  0.824182, 0.831803, 0.824182,
];
/** The landmarks dlib fits the chip to: 27–54 and 60–64 (no jaw, eyebrows or lower lip). */
export const DLIB_CHIP_POINTS: readonly number[] = Array.from({ length: 68 }, (_, i) => i)
  .filter((i) => i >= 27 && !(i >= 55 && i <= 59) && !(i >= 65 && i <= 67));

/** Where dlib puts landmark i (one of DLIB_CHIP_POINTS) in a size×size chip with `padding` (fraction of the face). */
export function dlibChipPoint(i: number, size: number, padding: number): Point {
  return [size * (padding + DLIB_MEAN_FACE_X[i - 17]!) / (2 * padding + 1), size * (padding + DLIB_MEAN_FACE_Y[i - 17]!) / (2 * padding + 1)];
}

/**
 * The chip → image map (tf.image.transform's output → input form) of dlib's face chip from 68 landmarks: the
 * least-squares similarity from the chip points to the image points, fitted in that direction as dlib fits it.
 */
export function dlibChipTransform(p68: readonly Point[], size: number, padding: number): number[] {
  if (p68.length !== 68) throw new Error(`dlib-chip alignment needs 68 landmarks, got ${p68.length}`);
  const m = similarityTransform(DLIB_CHIP_POINTS.map((i) => dlibChipPoint(i, size, padding)), DLIB_CHIP_POINTS.map((i) => p68[i]!));
  return [...m, 0, 0];
}

/** 68-point (dlib/iBUG) landmarks → the 5 points: eye centres (36+39)/2, (42+45)/2, nose 30, mouth 48, 54. */
export function fivePointsFrom68(p: readonly Point[]): Point[] {
  const mid = (i: number, j: number): Point => [(p[i]![0] + p[j]![0]) / 2, (p[i]![1] + p[j]![1]) / 2];
  return [mid(36, 39), mid(42, 45), p[30]!, p[48]!, p[54]!];
}
