import type * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { contribution } from '../di/contribution.js';
import { headBaseOptions, MarginHead } from './margin-head.js';
import { arcMargin, marginLogits } from './margins.js';

/** ArcFace (Deng et al. 2019): target logit s·cos(θ_y + m), insightface's θ + m ≥ π rule. */
export class ArcFaceHead extends MarginHead {
  constructor(s: number, readonly m: number, initStd: number) { super('arcface', s, initStd); }

  protected applyMargin(cos: tf.Tensor2D, labels: tf.Tensor1D): tf.Tensor2D {
    return marginLogits(cos, labels, this.s, (c) => arcMargin(c, this.m));
  }
}

export const arcface = contribution({
  slot: 'head',
  kind: 'arcface',
  summary: 'ArcFace additive angular margin: s·cos(θ_y + m); s 64, m 0.5 (insightface arcface_torch)',
  options: z.object({
    ...headBaseOptions,
    m: z.number().min(0).max(Math.PI / 2).default(0.5).describe('additive angular margin (radians)'),
  }),
  async create(o) { return new ArcFaceHead(o.s, o.m, o.initStd); },
});
