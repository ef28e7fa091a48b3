import * as tf from '@tensorflow/tfjs';
import { Rng } from '../../core/index.js';
import { CONTEXT_SCALE, CONTEXT_SIZE, type FaceCrops } from './detect.js';

export interface AugmentOptions {
  /** Output side in px. */
  readonly size: number;
  /** Face box side relative to the output side (1.3 = some margin around the box). */
  readonly margin: number;
  /** Max relative scale change (0.1 = ±10 %). */
  readonly scaleJitter: number;
  /** Max shift as a fraction of the crop side. */
  readonly shiftJitter: number;
  /** Max relative brightness change. */
  readonly brightnessJitter: number;
  readonly flip: boolean;
}

/** Deterministic parameters of view `view` of face `face`: the same key always gives the same image. */
function viewParams(seed: number, face: number, view: number, o: AugmentOptions) {
  const rng = new Rng((seed * 1000003 + face * 7919 + view * 104729) >>> 0);
  return {
    scale: 1 + o.scaleJitter * (2 * rng.next() - 1),
    dx: o.shiftJitter * (2 * rng.next() - 1),
    dy: o.shiftJitter * (2 * rng.next() - 1),
    brightness: 1 + o.brightnessJitter * (2 * rng.next() - 1),
    flip: o.flip && rng.next() < 0.5,
  };
}

/** Renders views ([N, size, size, 3] float 0..255) of the stored context crops. */
export function renderViews(crops: FaceCrops, items: readonly { face: number; view: number }[], seed: number, o: AugmentOptions): tf.Tensor4D {
  return tf.tidy(() => {
    const faces = [...new Set(items.map((it) => it.face))];
    const px = CONTEXT_SIZE * CONTEXT_SIZE * 3;
    const buf = new Float32Array(faces.length * px);
    faces.forEach((f, i) => buf.set(crops.data.subarray(f * px, (f + 1) * px), i * px));
    const src = tf.tensor4d(buf, [faces.length, CONTEXT_SIZE, CONTEXT_SIZE, 3]);
    const boxes: number[][] = [];
    const flips: number[] = [];
    const gains: number[] = [];
    for (const it of items) {
      const p = viewParams(seed, it.face, it.view, o);
      // Half-side of the view in context-normalised coordinates (box side = 1/CONTEXT_SCALE).
      const half = (o.margin * p.scale) / CONTEXT_SCALE / 2;
      const cx = 0.5 + p.dx * 2 * half, cy = 0.5 + p.dy * 2 * half;
      boxes.push([cy - half, cx - half, cy + half, cx + half]);
      flips.push(p.flip ? 1 : 0);
      gains.push(p.brightness);
    }
    const cut = tf.image.cropAndResize(src, boxes, items.map((it) => faces.indexOf(it.face)), [o.size, o.size], 'bilinear');
    const flipped = tf.image.flipLeftRight(cut);
    const f = tf.tensor4d(flips, [items.length, 1, 1, 1]);
    const mixed = tf.add(tf.mul(flipped, f), tf.mul(cut, tf.sub(1, f)));
    return tf.clipByValue(tf.mul(mixed, tf.tensor4d(gains, [items.length, 1, 1, 1])), 0, 255) as tf.Tensor4D;
  });
}
