import type * as tf from '@tensorflow/tfjs';
import type { PreprocessContract } from './preprocess.js';

/** A frozen model that maps face images to embeddings. */
export interface Teacher {
  /** Human-readable name for reports, e.g. `face-api-resnet34`. */
  readonly name: string;
  readonly contract: PreprocessContract;
  readonly embeddingDim: number;
  /** Content hash of the weights (sha256 of the weight files). */
  readonly weightsHash: string;
  readonly paramCount: number;
  /** images: [N, H, W, 3] float32 RGB 0..255 at any size; returns [N, D] (caller disposes). */
  embed(images: tf.Tensor4D): Promise<tf.Tensor2D>;
  dispose(): void;
}
