import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { selectBackend } from '../../core/backends/select.js';
import { registerNativeBackend, NATIVE_BACKEND } from '../../core/backends/native/backend.js';
import { alignFaces, inverseSimilarity, similarityTransform, templateFor, type Point } from '../../core/images/align.js';

/** A seeded W×H×3 image: smooth gradients plus a per-image pattern, so every image and every pixel differ. */
function image(seed: number, h: number, w: number): Float32Array {
  const a = new Float32Array(h * w * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let c = 0; c < 3; c++) {
    a[(y * w + x) * 3 + c] = (37 * seed + 3 * x + 5 * y + 71 * c + ((x * y * (seed + 2)) % 17)) % 256;
  }
  return a;
}

/**
 * Independent per-image reference of 5-point alignment: for each output pixel, the inverse similarity gives the
 * source point, sampled bilinearly with neighbours outside the image read as 0 (cv2.warpAffine, borderValue 0).
 */
function referenceAlign(src: Float32Array, h: number, w: number, lm: readonly Point[], size: number): Float32Array {
  const inv = inverseSimilarity(similarityTransform(lm, templateFor(size)));
  const px = (y: number, x: number, c: number) => (y >= 0 && y < h && x >= 0 && x < w ? src[(y * w + x) * 3 + c]! : 0);
  const out = new Float32Array(size * size * 3);
  for (let oy = 0; oy < size; oy++) for (let ox = 0; ox < size; ox++) {
    const sx = inv[0] * ox + inv[1] * oy + inv[2], sy = inv[3] * ox + inv[4] * oy + inv[5];
    const x0 = Math.floor(sx), y0 = Math.floor(sy), fx = sx - x0, fy = sy - y0;
    for (let c = 0; c < 3; c++) {
      out[(oy * size + ox) * 3 + c] = (1 - fy) * ((1 - fx) * px(y0, x0, c) + fx * px(y0, x0 + 1, c))
        + fy * ((1 - fx) * px(y0 + 1, x0, c) + fx * px(y0 + 1, x0 + 1, c));
    }
  }
  return out;
}

const H = 90, W = 100, SIZE = 112;
// Three faces at different places, scales and rotations (the last partly outside the image: fill matters).
const LANDMARKS: Point[][] = [
  [[30, 35], [62, 34], [46, 52], [33, 68], [60, 67]],
  [[42, 28], [70, 40], [52, 55], [36, 66], [60, 76]],
  [[60, 50], [95, 48], [78, 70], [64, 88], [92, 87]],
];

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

describe('batched 5-point alignment is right on every backend (each image of a batch warped, none left black)', () => {
  let previous = '';
  before(() => { previous = tf.getBackend(); });
  after(async () => { await selectBackend(previous as 'cpu'); });

  const imgs = [0, 1, 2].map((s) => image(s, H, W));
  const batch = () => tf.tensor4d(Float32Array.from(imgs.flatMap((a) => Array.from(a))), [3, H, W, 3]);

  for (const backend of ['cpu', NATIVE_BACKEND, 'wasm'] as const) {
    it(`${backend}: a batch of 3 distinct images and transforms equals the per-image reference, and the single-image results`, async function () {
      if (backend === NATIVE_BACKEND && !registerNativeBackend().ok) this.skip();
      await selectBackend(backend);
      expect(tf.getBackend()).to.equal(backend);
      const before = tf.memory().numTensors;
      const x = batch();
      const aligned = alignFaces(x, LANDMARKS, SIZE);
      expect(aligned.shape).to.deep.equal([3, SIZE, SIZE, 3]);
      const got = aligned.dataSync();
      for (let i = 0; i < 3; i++) {
        const slice = got.subarray(i * SIZE * SIZE * 3, (i + 1) * SIZE * SIZE * 3);
        const ref = referenceAlign(imgs[i]!, H, W, LANDMARKS[i]!, SIZE);
        expect(maxAbsDiff(slice, ref), `image ${i} vs the reference`).to.be.below(1e-2); // 0..255 values, float32 rounding
        // Not trivially black: the reference has texture there.
        expect(ref.reduce((s, v) => s + v, 0), `image ${i} reference`).to.be.above(1e5);
        const one = tf.tensor4d(imgs[i]!, [1, H, W, 3]);
        const single = alignFaces(one, [LANDMARKS[i]!], SIZE);
        expect(maxAbsDiff(slice, single.dataSync()), `image ${i} batched vs alone`).to.be.below(1e-4);
        tf.dispose([one, single]);
      }
      tf.dispose([x, aligned]);
      expect(tf.memory().numTensors).to.equal(before);
    });
  }

  it('cpu: other output shapes, a shared transform, both samplings and every fill mode: batched = one by one; wasm agrees', async () => {
    // The shared [1, 8] transform: a rotation by 0.4 rad and a shift, projective terms 0.
    const m = [Math.cos(0.4), -Math.sin(0.4), 20, Math.sin(0.4), Math.cos(0.4), -15, 0, 0];
    const run = (x: tf.Tensor4D, interpolation: 'nearest' | 'bilinear', fillMode: 'constant' | 'reflect' | 'wrap' | 'nearest') =>
      tf.tidy(() => tf.image.transform(x, tf.tensor2d(m, [1, 8]), interpolation, fillMode, 7, [64, 120]).dataSync() as Float32Array);
    const results: Record<string, Float32Array[]> = {};
    for (const backend of ['cpu', 'wasm'] as const) {
      await selectBackend(backend);
      results[backend] = [];
      for (const interpolation of ['nearest', 'bilinear'] as const) {
        for (const fillMode of ['constant', 'reflect', 'wrap', 'nearest'] as const) {
          const x = batch();
          const got = run(x, interpolation, fillMode);
          expect(got.length, `${backend} ${interpolation} ${fillMode}`).to.equal(3 * 64 * 120 * 3);
          if (backend === 'cpu') {
            for (let i = 0; i < 3; i++) {
              const one = tf.tensor4d(imgs[i]!, [1, H, W, 3]);
              const alone = run(one, interpolation, fillMode);
              one.dispose();
              expect(maxAbsDiff(got.subarray(i * alone.length, (i + 1) * alone.length), alone), `${interpolation} ${fillMode} image ${i}`).to.equal(0);
            }
          }
          results[backend]!.push(got);
          x.dispose();
        }
      }
    }
    // wasm is an independent implementation; its reflect mode departs from TensorFlow's map_coord (checked by hand below).
    for (const i of [0, 2, 3, 4, 6, 7]) expect(maxAbsDiff(results.cpu![i]!, results.wasm![i]!), `case ${i}`).to.be.below(1e-2);
  });

  it('cpu: reflect and wrap fill by hand on one row [10 20 30 40] (TensorFlow: dcba|abcd|dcba and abcd|abcd|abcd)', async () => {
    await selectBackend('cpu');
    const row = tf.tensor4d([10, 20, 30, 40], [1, 1, 4, 1]);
    const shifted = (dx: number, mode: 'reflect' | 'wrap') => tf.tidy(() => Array.from(tf.image.transform(row, tf.tensor2d([1, 0, dx, 0, 1, 0, 0, 0], [1, 8]), 'nearest', mode, 0, [1, 4]).dataSync()));
    expect(shifted(-2, 'reflect')).to.deep.equal([20, 10, 10, 20]);
    expect(shifted(2, 'reflect')).to.deep.equal([30, 40, 40, 30]);
    expect(shifted(-1, 'wrap')).to.deep.equal([40, 10, 20, 30]);
    row.dispose();
  });
});
