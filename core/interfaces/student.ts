import type * as tf from '@tensorflow/tfjs';
import type { PreprocessContract } from './preprocess.js';

/** A trainable model. `forward` is synchronous so it can run inside gradient closures. */
export interface Student {
  readonly name: string;
  readonly contract: PreprocessContract;
  readonly embeddingDim: number;
  readonly model: tf.LayersModel;
  /** images: [N, H, W, 3] float32 RGB 0..255 at any size; returns raw (unnormalised) [N, D]. */
  forward(images: tf.Tensor4D, training: boolean): tf.Tensor2D;
  /** Trainable parameter count (frozen BN statistics excluded). */
  readonly paramCount: number;
  dispose(): void;
}
