import type * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { contribution, contributionModule, EmbeddingKdStrategy, embeddingKdOptions } from '../../core/index.js';
import { CCKD_DEFAULTS, cckdLoss } from './loss.js';

/** CCKD's own options: the strategy's and the `loss` component's. */
export const cckdLossOptions = z.object({
  gamma: z.number().positive().default(CCKD_DEFAULTS.gamma).describe('RBF kernel width γ'),
  terms: z.union([z.literal(2), z.literal(3)]).default(CCKD_DEFAULTS.terms).describe('Taylor terms P (2: current TFace code; 3: earlier code)'),
});
export const cckdOptions = embeddingKdOptions.extend(cckdLossOptions.shape);
type Options = z.infer<typeof cckdOptions>;

class Cckd extends EmbeddingKdStrategy<Options> {
  readonly name = 'cckd';
  protected terms(s: tf.Tensor2D, t: tf.Tensor2D): Record<string, tf.Scalar> { return { cckd: cckdLoss(s, t, this.o) }; }
}

export const cckd = contribution({
  slot: 'strategy', kind: 'cckd',
  summary: 'correlation-congruence KD (Peng et al. 2019): MSE of Taylor-RBF correlation matrices',
  options: cckdOptions,
  async create(o, ctx) { return new Cckd(o, EmbeddingKdStrategy.headOf(o, ctx)); },
});

export const cckdLossComponent = contribution({
  slot: 'loss', kind: 'cckd', summary: 'correlation congruence: MSE of Taylor-RBF correlation matrices', options: cckdLossOptions,
  async create(o) { return { name: 'cckd', compute: (s, t) => cckdLoss(s, t, o) }; },
});

export default contributionModule(cckd, cckdLossComponent);
