import * as tf from '@tensorflow/tfjs';

// SynthDistill's face crop P (strategy-specs §1.3, `otroshi/synthdistill` src/Crop.py): a
// fixed scale-and-translate of a StyleGAN FFHQ frame that puts FFHQ's canonical eye centres
// on the ArcFace 112×112 template's eyes. No landmarks, no rotation.

/** Eye centres (row, col) in a 256 px FFHQ frame: image-left eye, image-right eye. */
const FFHQ_EYES_256 = [[120, 95], [120, 162]] as const;
/** Their targets (row, col) in the 112 px ArcFace frame. */
const ARCFACE_EYES_112 = [[51.6, 38.2946], [51.6, 73.5318]] as const;

export interface CropBox { readonly begin: readonly [number, number]; readonly size: readonly [number, number] }

/**
 * The integer crop for a square generator output of side `side`: the 256 px numbers scaled
 * by side/256, then α = (73.5318 − 38.2946) / (eye distance), top-left = eye − target/α,
 * side 112/α, begin = ⌊top-left⌋, end = ⌊top-left + 112/α⌋ (exclusive).
 * For 256: begin [21, 22], size [213, 213].
 */
export function synthdistillCropBox(side: number): CropBox {
  const s = side / 256;
  const [r0, c0] = [FFHQ_EYES_256[0][0] * s, FFHQ_EYES_256[0][1] * s];
  const alpha = (ARCFACE_EYES_112[1][1] - ARCFACE_EYES_112[0][1]) / ((FFHQ_EYES_256[1][1] - FFHQ_EYES_256[0][1]) * s);
  const top = r0 - ARCFACE_EYES_112[0][0] / alpha, left = c0 - ARCFACE_EYES_112[0][1] / alpha;
  const extent = 112 / alpha;
  const begin = [Math.floor(top), Math.floor(left)] as const;
  const end = [Math.floor(top + extent), Math.floor(left + extent)] as const;
  if (begin[0] < 0 || begin[1] < 0 || end[0] > side || end[1] > side) throw new Error(`synthdistill crop: box leaves a ${side} px frame`);
  return { begin, size: [end[0] - begin[0], end[1] - begin[1]] };
}

/** P: slice the box, then bilinear resize to `out` (align_corners false, half-pixel centres, no antialiasing). */
export function synthdistillCrop(images: tf.Tensor4D, out = 112): tf.Tensor4D {
  const [, h, w] = images.shape;
  if (h !== w) throw new Error(`synthdistill crop: needs a square generator output, got ${h}×${w}`);
  const box = synthdistillCropBox(h);
  return tf.tidy(() => tf.image.resizeBilinear(tf.slice(images, [0, box.begin[0], box.begin[1], 0], [-1, box.size[0], box.size[1], -1]) as tf.Tensor4D, [out, out], false, true));
}
