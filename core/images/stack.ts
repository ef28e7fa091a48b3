import * as tf from '@tensorflow/tfjs';
import type { RgbImage } from './decode.js';

/** Stacks same-size RGB images into one float32 [N, S, S, 3] tensor in 0..255. */
export function stackImages(images: readonly RgbImage[]): tf.Tensor4D {
  const s = images[0]!.size;
  const buf = new Float32Array(images.length * s * s * 3);
  images.forEach((im, i) => {
    if (im.size !== s) throw new Error(`cannot stack images of sizes ${s} and ${im.size}`);
    buf.set(im.data, i * s * s * 3);
  });
  return tf.tensor4d(buf, [images.length, s, s, 3]);
}
