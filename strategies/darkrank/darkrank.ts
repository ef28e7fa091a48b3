import type * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { contribution, contributionModule, EmbeddingKdStrategy, embeddingKdOptions } from '../../core/index.js';
import { DARKRANK_DEFAULTS, darkRankLoss } from './loss.js';

/** DarkRank's own options: the strategy's and the `loss` component's. */
export const darkRankLossOptions = z.object({
  alpha: z.number().positive().default(DARKRANK_DEFAULTS.alpha).describe('score scale α in s_ij = −α‖f̂_i − f̂_j‖^β'),
  beta: z.number().positive().default(DARKRANK_DEFAULTS.beta).describe('distance exponent β'),
  listLength: z.number().int().min(1).default(DARKRANK_DEFAULTS.listLength).describe('length of the transferred ranking (clamped to B − 1)'),
});
export const darkRankOptions = embeddingKdOptions.extend(darkRankLossOptions.shape);
type Options = z.infer<typeof darkRankOptions>;

class DarkRank extends EmbeddingKdStrategy<Options> {
  readonly name = 'darkrank';
  protected terms(s: tf.Tensor2D, t: tf.Tensor2D): Record<string, tf.Scalar> { return { darkrank: darkRankLoss(s, t, this.o) }; }
}

export const darkRank = contribution({
  slot: 'strategy', kind: 'darkrank',
  summary: 'hard DarkRank (Chen et al. 2018): Plackett–Luce likelihood of the teacher\'s top-3 neighbour order',
  options: darkRankOptions,
  async create(o, ctx) { return new DarkRank(o, EmbeddingKdStrategy.headOf(o, ctx)); },
});

export const darkRankLossComponent = contribution({
  slot: 'loss', kind: 'darkrank', summary: 'hard DarkRank: Plackett–Luce likelihood of the teacher\'s top-k neighbour order', options: darkRankLossOptions,
  async create(o) { return { name: 'darkrank', compute: (s, t) => darkRankLoss(s, t, o) }; },
});

export default contributionModule(darkRank, darkRankLossComponent);
