import type * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { contribution } from '../di/contribution.js';
import { headBaseOptions, MarginHead } from './margin-head.js';
import { cosMargin, marginLogits } from './margins.js';

/** CosFace / large-margin cosine loss (Wang et al. 2018): target logit s·(cos θ_y − m). */
export class CosFaceHead extends MarginHead {
  constructor(s: number, readonly m: number, initStd: number) { super('cosface', s, initStd); }

  protected applyMargin(cos: tf.Tensor2D, labels: tf.Tensor1D): tf.Tensor2D {
    return marginLogits(cos, labels, this.s, (c) => cosMargin(c, this.m));
  }
}

export const cosface = contribution({
  slot: 'head',
  kind: 'cosface',
  summary: 'CosFace additive cosine margin: s·(cos θ_y − m); s 64, m 0.4 (insightface arcface_torch)',
  options: z.object({
    ...headBaseOptions,
    m: z.number().min(0).max(2).default(0.4).describe('additive cosine margin'),
  }),
  async create(o) { return new CosFaceHead(o.s, o.m, o.initStd); },
});
