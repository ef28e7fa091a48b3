import type * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { contribution } from '../di/contribution.js';
import { ElasticMarginHead, headBaseOptions } from './margin-head.js';
import { elasticArcMargin } from './margins.js';

/** ElasticArcFace (Boutros et al. 2022): s·cos(θ_y + m_i), m_i ~ N(m, σ²) per sample per step. */
export class ElasticArcFaceHead extends ElasticMarginHead {
  constructor(s: number, m: number, sigma: number, initStd: number) { super('elastic-arcface', s, initStd, m, sigma); }

  protected target(cosY: tf.Tensor1D, margins: tf.Tensor1D): tf.Tensor1D { return elasticArcMargin(cosY, margins); }
}

export const elasticArcface = contribution({
  slot: 'head',
  kind: 'elastic-arcface',
  summary: 'ElasticArcFace: s·cos(θ_y + m_i), m_i ~ N(m, σ²); s 64, m 0.5, σ 0.05 (MST-KD teachers and student)',
  options: z.object({
    ...headBaseOptions,
    m: z.number().min(0).max(Math.PI / 2).default(0.5).describe('mean angular margin (radians)'),
    sigma: z.number().min(0).default(0.05).describe('std of the per-sample margin (MST-KD adaptor: 0.0125)'),
  }),
  async create(o) { return new ElasticArcFaceHead(o.s, o.m, o.sigma, o.initStd); },
});
