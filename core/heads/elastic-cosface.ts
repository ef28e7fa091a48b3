import type * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { contribution } from '../di/contribution.js';
import { ElasticMarginHead, headBaseOptions } from './margin-head.js';
import { cosMargin } from './margins.js';

/** ElasticCosFace (Boutros et al. 2022): s·(cos θ_y − m_i), m_i ~ N(m, σ²) per sample per step. */
export class ElasticCosFaceHead extends ElasticMarginHead {
  constructor(s: number, m: number, sigma: number, initStd: number) { super('elastic-cosface', s, initStd, m, sigma); }

  protected target(cosY: tf.Tensor1D, margins: tf.Tensor1D): tf.Tensor1D { return cosMargin(cosY, margins); }
}

export const elasticCosface = contribution({
  slot: 'head',
  kind: 'elastic-cosface',
  summary: 'ElasticCosFace: s·(cos θ_y − m_i), m_i ~ N(m, σ²); s 64, m 0.35, σ 0.0125 (ElasticFace defaults)',
  options: z.object({
    ...headBaseOptions,
    m: z.number().min(0).max(2).default(0.35).describe('mean cosine margin'),
    sigma: z.number().min(0).default(0.0125).describe('std of the per-sample margin'),
  }),
  async create(o) { return new ElasticCosFaceHead(o.s, o.m, o.sigma, o.initStd); },
});
