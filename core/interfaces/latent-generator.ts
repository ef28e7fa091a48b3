import type * as tf from '@tensorflow/tfjs';
import type { Batch, DataSource } from './data-source.js';

/** A batch drawn from a generator: the latents it was rendered from come with it. */
export interface LatentBatch extends Batch {
  /** [N, latentDim]; the consumer disposes (with the images). */
  readonly latents: tf.Tensor2D;
}

/**
 * A data source with a latent space (PCA face model, StyleGAN, ...). `next()` renders fresh
 * latents; after `feedback(keys, std)` the next `next()` returns the *resampled* batch
 * w′_i = w_i + std_i·ε_i (ε ~ N(0, I)) of the batch those keys came from — SynthDistill's
 * dynamic latent sampling (strategy-specs §1.4 steps 5–6), with the strategy choosing std.
 */
export interface LatentGenerator extends DataSource {
  readonly latentDim: number;
  next(batchSize: number): Promise<LatentBatch>;
  feedback(keys: readonly import('./data-source.js').SampleKey[], std: Float32Array): void;
  /** Renders latents to [N, H, W, 3] float32 RGB 0..255 (no gradient). */
  render(latents: tf.Tensor2D): tf.Tensor4D;
}

export function isLatentGenerator(d: DataSource): d is LatentGenerator {
  return typeof (d as Partial<LatentGenerator>).render === 'function' && typeof (d as Partial<LatentGenerator>).latentDim === 'number';
}
