import * as tf from '@tensorflow/tfjs';
import type { PreprocessContract } from '../interfaces/preprocess.js';

/** Resizes 0..255 RGB images to the contract's size and normalises them. Call inside tidy. */
export function applyContract(images: tf.Tensor4D, c: PreprocessContract): tf.Tensor4D {
  const [h, w] = c.inputSize;
  let x = images.shape[1] === h && images.shape[2] === w ? images : tf.image.resizeBilinear(images, [h, w], true);
  if (c.colour === 'bgr') x = tf.reverse(x, -1);
  if (c.normalise === 'unit') x = tf.div(x, 255);
  else if (c.normalise === 'symmetric') x = tf.sub(tf.div(x, 127.5), 1);
  return x;
}
