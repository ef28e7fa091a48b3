import type * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { contribution, contributionModule, LogitDistillationStrategy, logitDistillationOptions, type LogitKdTerms } from '../../core/index.js';
import { LOGIT_KD_TEMPERATURE, logitKdLoss } from './loss.js';

export const logitKdOptions = logitDistillationOptions.extend({
  temperature: z.number().positive().default(LOGIT_KD_TEMPERATURE).describe('KD temperature T'),
  weight: z.number().min(0).default(1).describe('weight of the KD term'),
});
type Options = z.infer<typeof logitKdOptions>;

/** Hinton KD on margin-head logits, with the student head's CE (WisonZ/GKD distillation/kd.py). */
class LogitKd extends LogitDistillationStrategy<Options> {
  readonly name = 'logit-kd';
  protected kdTerms(zs: tf.Tensor2D, zt: tf.Tensor2D): LogitKdTerms {
    const kd = logitKdLoss(zs, zt, this.o.temperature);
    return { terms: { kd: this.o.weight === 1 ? kd : kd.mul(this.o.weight) } };
  }
}

export const logitKd = contribution({
  slot: 'strategy', kind: 'logit-kd',
  summary: 'Hinton KD (2015): T²/B·Σ KL(softmax(z^t/T) ‖ softmax(z^s/T)), T 4, + CE with the student head; teacher logits from a fitted head',
  options: logitKdOptions,
  async create(o, ctx) { return new LogitKd(o, LogitDistillationStrategy.headsOf(o, ctx), ctx.log); },
});

export default contributionModule(logitKd);
