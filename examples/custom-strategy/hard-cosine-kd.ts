// A user strategy, written the way a plugin author would: it imports only the package's public
// API (here by relative path, because this file lives inside the package; a user's own project
// imports the same names from 'facedistill') and exports a ContainerModule. A recipe loads it
// with `plugins: [dist/examples/custom-strategy/hard-cosine-kd.js]`; nothing in the package
// names it.
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { contribution, contributionModule, EmbeddingKdStrategy, embeddingKdOptions, l2normalize, stopGradient } from '../../core/index.js';

export const hardCosineKdOptions = embeddingKdOptions.extend({
  gamma: z.number().min(0).default(1).describe('focus on badly matched samples: weight ∝ (1 − cos)^gamma; 0 = plain mean cosine distance'),
});
type Options = z.infer<typeof hardCosineKdOptions>;

/**
 * L = Σ_i w_i·(1 − cos(s_i, t_i)), w_i = (1 − cos_i)^γ / Σ_j (1 − cos_j)^γ, the weights held
 * constant (no gradient) so they only choose where the student's effort goes.
 */
export function hardCosineLoss(s: tf.Tensor2D, t: tf.Tensor2D, gamma: number): tf.Scalar {
  return tf.tidy(() => {
    const dist = tf.sub(1, tf.sum(tf.mul(l2normalize(s), l2normalize(t)), 1)) as tf.Tensor1D;
    const raw = tf.pow(tf.maximum(stopGradient(dist), 0), gamma);
    const sum = tf.sum(raw);
    // All samples already matched exactly (sum 0): fall back to uniform weights.
    const w = tf.where(tf.greater(sum, 1e-12), tf.div(raw, tf.maximum(sum, 1e-12)), tf.fill(raw.shape, 1 / raw.shape[0]!));
    return tf.sum(tf.mul(w, dist)) as tf.Scalar;
  });
}

class HardCosineKd extends EmbeddingKdStrategy<Options> {
  readonly name = 'hard-cosine-kd';
  protected terms(s: tf.Tensor2D, t: tf.Tensor2D): Record<string, tf.Scalar> {
    if (s.shape[1] !== t.shape[1]) throw new Error(`hard-cosine-kd: student dim ${s.shape[1]} ≠ teacher dim ${t.shape[1]}`);
    return { hard_cosine: hardCosineLoss(s, t, this.o.gamma) };
  }
}

export const hardCosineKd = contribution({
  slot: 'strategy',
  kind: 'hard-cosine-kd',
  summary: 'example plugin: cosine KD weighted towards the worst-matched samples of the batch',
  options: hardCosineKdOptions,
  async create(o, ctx) { return new HardCosineKd(o, EmbeddingKdStrategy.headOf(o, ctx)); },
});

export default contributionModule(hardCosineKd);
