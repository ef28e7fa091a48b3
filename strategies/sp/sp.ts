import type * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { contribution, contributionModule, EmbeddingKdStrategy, embeddingKdOptions } from '../../core/index.js';
import { spLoss } from './loss.js';

export const spOptions = embeddingKdOptions;
type Options = z.infer<typeof spOptions>;

class Sp extends EmbeddingKdStrategy<Options> {
  readonly name = 'sp';
  protected terms(s: tf.Tensor2D, t: tf.Tensor2D): Record<string, tf.Scalar> { return { sp: spLoss(s, t) }; }
}

export const sp = contribution({
  slot: 'strategy', kind: 'sp',
  summary: 'similarity-preserving KD (Tung & Mori 2019): ‖G^s − G^t‖²_F / B² on normalised embeddings',
  options: spOptions,
  async create(o, ctx) { return new Sp(o, EmbeddingKdStrategy.headOf(o, ctx)); },
});

export const spLossComponent = contribution({
  slot: 'loss', kind: 'sp', summary: 'similarity-preserving: ‖G^s − G^t‖²_F / B² of the normalised Gram matrices', options: z.object({}),
  async create() { return { name: 'sp', compute: spLoss }; },
});

export default contributionModule(sp, spLossComponent);
