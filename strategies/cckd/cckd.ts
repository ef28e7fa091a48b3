import type * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { contribution, contributionModule, EmbeddingKdStrategy, embeddingKdOptions } from '../../core/index.js';
import { CCKD_DEFAULTS, cckdLoss } from './loss.js';

export const cckdOptions = embeddingKdOptions.extend({
  gamma: z.number().positive().default(CCKD_DEFAULTS.gamma).describe('RBF kernel width γ'),
  terms: z.union([z.literal(2), z.literal(3)]).default(CCKD_DEFAULTS.terms).describe('Taylor terms P (2: current TFace code; 3: earlier code)'),
});
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

export default contributionModule(cckd);
