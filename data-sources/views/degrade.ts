import * as tf from '@tensorflow/tfjs';
import sharp from 'sharp';
import { gaussianBlur, type Rng } from '../../core/index.js';

/** The low-resolution synthesis of strategy-specs §4.5 step B1, plus optional noise and JPEG. */
export interface DegradeOptions {
  /** Resolutions r drawn uniformly per sample. */
  readonly lrSizes: readonly number[];
  /** Side of the student view after the round trip through r×r. */
  readonly studentSize: number;
  /** σ of additive Gaussian noise on the r×r image, in 0..255 units (0: none). */
  readonly noiseStd: number;
  /** JPEG quality range [lo, hi] (integers, drawn uniformly) applied to the r×r image; absent: none. */
  readonly jpegQuality?: readonly [number, number];
  /** Probability of flipping teacher and student views together. */
  readonly pFlip: number;
}

/** One sample's draws. */
export interface ViewParams {
  readonly r: number;
  readonly flip: boolean;
  readonly quality?: number;
  /** r·r·3 standard normals (HWC), when noiseStd > 0. */
  readonly noise?: Float32Array;
}

/** Draws one sample's parameters, in this order: r, flip, JPEG quality, noise. */
export function drawViewParams(rng: Rng, o: DegradeOptions): ViewParams {
  const r = o.lrSizes[rng.int(o.lrSizes.length)]!;
  const flip = rng.next() < o.pFlip;
  const quality = o.jpegQuality ? o.jpegQuality[0] + rng.int(o.jpegQuality[1] - o.jpegQuality[0] + 1) : undefined;
  let noise: Float32Array | undefined;
  if (o.noiseStd > 0) {
    noise = new Float32Array(r * r * 3);
    for (let i = 0; i < noise.length; i++) noise[i] = rng.normal();
  }
  return { r, flip, ...(quality !== undefined ? { quality } : {}), ...(noise ? { noise } : {}) };
}

/**
 * x [1, S, S, 3] 0..255 (already flipped) → the r×r degraded image [1, r, r, 3]: Gaussian blur
 * σ_b = 0.5·S/r (the anti-aliasing width of an S → r reduction; 0.5·112/r for 112 px input),
 * bilinear resize to r×r, + noiseStd·ε, clamp to 0..255.
 */
export function lowResolution(x: tf.Tensor4D, p: ViewParams, noiseStd: number): tf.Tensor4D {
  const side = x.shape[1];
  return tf.tidy(() => {
    const blurred = p.r < side ? gaussianBlur(x, (0.5 * side) / p.r) : x;
    let small: tf.Tensor4D = tf.image.resizeBilinear(blurred, [p.r, p.r], false, true);
    if (p.noise && noiseStd > 0) small = tf.add(small, tf.mul(tf.tensor4d(p.noise, [1, p.r, p.r, 3]), noiseStd));
    return tf.clipByValue(small, 0, 255);
  });
}

/** JPEG round trip through sharp (rounded to uint8 first, as any saved image is). */
async function jpegRoundTrip(x: tf.Tensor4D, quality: number): Promise<tf.Tensor4D> {
  const [, h, w] = x.shape;
  const bytes = Uint8Array.from(await x.data(), (v) => Math.round(v));
  const jpeg = await sharp(Buffer.from(bytes.buffer), { raw: { width: w, height: h, channels: 3 } }).jpeg({ quality }).toBuffer();
  const { data } = await sharp(jpeg).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return tf.tensor4d(Float32Array.from(data), [1, h, w, 3]);
}

/**
 * Teacher and student views of a batch: the teacher view is the (possibly flipped) source
 * image; the student view is its low-resolution version at studentSize.
 */
export async function renderViews(images: tf.Tensor4D, params: readonly ViewParams[], o: DegradeOptions): Promise<{ teacher: tf.Tensor4D; student: tf.Tensor4D }> {
  const n = images.shape[0];
  if (params.length !== n) throw new Error(`views: ${params.length} parameter sets for ${n} images`);
  const teacher = tf.tidy(() => {
    const flips = tf.tensor4d(params.map((p) => (p.flip ? 1 : 0)), [n, 1, 1, 1]);
    return tf.add(tf.mul(tf.image.flipLeftRight(images), flips), tf.mul(images, tf.sub(1, flips))) as tf.Tensor4D;
  });
  const parts: tf.Tensor4D[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const p = params[i]!;
      let small = tf.tidy(() => lowResolution(tf.slice(teacher, [i, 0, 0, 0], [1, -1, -1, -1]), p, o.noiseStd));
      if (p.quality !== undefined) {
        const j = await jpegRoundTrip(small, p.quality);
        small.dispose();
        small = j;
      }
      parts.push(tf.tidy(() => tf.image.resizeBilinear(small, [o.studentSize, o.studentSize], false, true)));
      small.dispose();
    }
    const student = tf.concat(parts, 0);
    return { teacher, student };
  } catch (e) {
    teacher.dispose();
    throw e;
  } finally {
    tf.dispose(parts);
  }
}
