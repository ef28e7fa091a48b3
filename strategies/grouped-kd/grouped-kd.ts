import type * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { contribution, contributionModule, LogitDistillationStrategy, logitDistillationOptions, type LogitKdTerms, type StepContext } from '../../core/index.js';
import { GKD_DEFAULTS, gkdLoss, gkdRamp } from './loss.js';

export const groupedKdOptions = logitDistillationOptions.extend({
  groupMode: z.enum(['fixed', 'cumulative']).default('fixed').describe('fixed k (distillation/gkd.py) or the cumulative-mass rule (gkd_adaptive.py)'),
  groupSize: z.number().int().positive().default(GKD_DEFAULTS.groupSize).describe('fixed primary-group size k (clamped to the number of classes)'),
  tau: z.number().positive().default(GKD_DEFAULTS.tau).describe('cumulative-mass threshold τ'),
  step: z.number().int().positive().default(GKD_DEFAULTS.step).describe('scan step of the cumulative k'),
  cumulativeUsesKdTemperature: z.boolean().default(false).describe('scan softmax(z/T) with the KD temperature instead of T = 1 (§6.8 option)'),
  rankBy: z.enum(['student', 'teacher']).default('student').describe('logits that rank the classes into groups'),
  temperature: z.number().positive().default(GKD_DEFAULTS.temperature).describe('KD temperature T'),
  alpha: z.number().min(0).default(GKD_DEFAULTS.alpha).describe('weight of L_BKD (binary group mass)'),
  beta: z.number().min(0).optional().describe('weight of L_PKD (inside the primary group); default 8 for fixed, 4 for cumulative'),
  lambda: z.number().min(0).default(GKD_DEFAULTS.lambda).describe('weight of L_SKD (inside the secondary group)'),
  warmupEpochs: z.number().positive().default(10).describe('KD ramp w(e) = min(e / warmupEpochs, 1) over 0-based epochs'),
  stepsPerEpoch: z.number().int().positive().optional().describe('steps in one epoch for the ramp; default ⌈images / batchSize⌉ of the stage\'s data'),
});
type Options = z.infer<typeof groupedKdOptions>;

/** GKD (§6): CE(z^s, y) + w(e)·(α·L_BKD + β·L_PKD + λ·L_SKD) on CosFace logits of both sides. */
class GroupedKd extends LogitDistillationStrategy<Options> {
  readonly name = 'grouped-kd';

  /** Steps per epoch: the option, else one pass over the stage's images. */
  epochLength(batchSize: number): number {
    if (this.o.stepsPerEpoch !== undefined) return this.o.stepsPerEpoch;
    if (this.images === undefined) throw new Error('grouped-kd: the data source does not report its size; set stepsPerEpoch');
    return Math.max(1, Math.ceil(this.images / batchSize));
  }

  protected kdTerms(zs: tf.Tensor2D, zt: tf.Tensor2D, labels: Int32Array, ctx: StepContext): LogitKdTerms {
    const o = this.o;
    const epoch = Math.floor(ctx.step / this.epochLength(ctx.batchSize));
    const w = gkdRamp(epoch, o.warmupEpochs);
    const g = gkdLoss(zs, zt, labels, {
      groupMode: o.groupMode, groupSize: o.groupSize, tau: o.tau, step: o.step,
      cumulativeTemperature: o.cumulativeUsesKdTemperature ? o.temperature : 1, rankBy: o.rankBy,
      temperature: o.temperature, alpha: o.alpha, beta: o.beta ?? (o.groupMode === 'fixed' ? 8 : 4), lambda: o.lambda,
    });
    const log = { bkd: g.bkd.dataSync()[0]!, pkd: g.pkd.dataSync()[0]!, skd: g.skd.dataSync()[0]!, groupSize: g.groupSize, ramp: w, epoch };
    return { terms: { gkd: g.kd.mul(w) }, log };
  }
}

export const groupedKd = contribution({
  slot: 'strategy', kind: 'grouped-kd',
  summary: 'grouped KD (Zhao et al. AAAI 2023): CosFace CE + w(e)·(α·L_BKD + β·L_PKD + λ·L_SKD) on primary/secondary class groups; teacher logits from a fitted head',
  options: groupedKdOptions,
  async create(o, ctx) { return new GroupedKd(o, LogitDistillationStrategy.headsOf(o, ctx), ctx.log); },
});

export default contributionModule(groupedKd);
