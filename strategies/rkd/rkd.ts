import type * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { contribution, contributionModule, EmbeddingKdStrategy, embeddingKdOptions } from '../../core/index.js';
import { RKD_DEFAULTS, rkdAngle, rkdDistance, rkdLoss } from './loss.js';

export const rkdOptions = embeddingKdOptions.extend({
  distanceWeight: z.number().min(0).default(RKD_DEFAULTS.distanceWeight).describe('weight of the distance term (TFace rkd.py w_d)'),
  angleWeight: z.number().min(0).default(RKD_DEFAULTS.angleWeight).describe('weight of the angle term (rkd.py w_a)'),
});
type Options = z.infer<typeof rkdOptions>;

class Rkd extends EmbeddingKdStrategy<Options> {
  readonly name = 'rkd';
  protected terms(s: tf.Tensor2D, t: tf.Tensor2D): Record<string, tf.Scalar> {
    // Both parts are logged; the total is their weighted sum (rkdLoss applies the weights).
    const r = rkdLoss(s, t, this.o);
    return { rkd_distance: r.distance.mul(this.o.distanceWeight), rkd_angle: r.angle.mul(this.o.angleWeight) };
  }
}

export const rkd = contribution({
  slot: 'strategy', kind: 'rkd',
  summary: 'relational KD (Park et al. 2019): 25·Huber on normalised distances + 50·Huber on angles',
  options: rkdOptions,
  async create(o, ctx) { return new Rkd(o, EmbeddingKdStrategy.headOf(o, ctx)); },
});

/** The two parts as `loss` components, unweighted (the reference weights are 25 and 50): for the `kd` strategy's terms. */
export const rkdDistanceLoss = contribution({
  slot: 'loss', kind: 'rkd-distance', summary: 'RKD distance part: SmoothL1 of mean-normalised pairwise distances (unweighted; RKD uses 25)', options: z.object({}),
  async create() { return { name: 'rkd-distance', compute: rkdDistance }; },
});
export const rkdAngleLoss = contribution({
  slot: 'loss', kind: 'rkd-angle', summary: 'RKD angle part: SmoothL1 of the triplet angle cosines (unweighted; RKD uses 50)', options: z.object({}),
  async create() { return { name: 'rkd-angle', compute: rkdAngle }; },
});

export default contributionModule(rkd, rkdDistanceLoss, rkdAngleLoss);
