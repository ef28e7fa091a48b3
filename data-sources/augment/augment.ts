import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import {
  componentField, contribution, contributionModule, disposeBatch, flippedKeys, FlippingWrapperSource, hashJson,
  type Batch, type DataSource, type DataSourceInfo,
} from '../../core/index.js';

export const augmentOptions = z.object({
  source: componentField('data'),
  pFlip: z.number().min(0).max(1).default(0.5).describe('probability of a horizontal flip, seen by teacher and student alike'),
});
type Options = z.infer<typeof augmentOptions>;

/**
 * Horizontal flips of another source's samples, the augmentation face-distillation papers
 * train with. The teacher sees the same flipped image as the student; a flipped sample gets
 * its own key (`<key>|flip`), so its teacher embedding is computed once and cached like any
 * other, and `unflipped` names the original for strategies that want the upright target.
 *
 * Colour or scale jitter is left out on purpose: a jittered image never repeats, so its
 * teacher embedding could not be cached and the teacher would run on every step.
 */
class AugmentSource extends FlippingWrapperSource {
  constructor(private readonly o: Options, inner: DataSource, seed: number) {
    super('augment', inner, seed, 0x2c1b3c6d);
  }

  async init(): Promise<DataSourceInfo> {
    const info = await this.inner.init();
    return { ...info, name: `${info.name}, flipped with p = ${this.o.pFlip}`, listHash: hashJson({ inner: info.listHash, pFlip: this.o.pFlip }) };
  }

  async next(batchSize: number): Promise<Batch> {
    const b = await this.inner.next(batchSize);
    const flip = b.keys.map(() => this.rng.next() < this.o.pFlip);
    if (!flip.some(Boolean)) return b;
    try {
      const images = tf.tidy(() => {
        const mask = tf.tensor4d(flip.map((f) => (f ? 1 : 0)), [flip.length, 1, 1, 1]);
        return tf.add(tf.mul(tf.image.flipLeftRight(b.images), mask), tf.mul(b.images, tf.sub(1, mask))) as tf.Tensor4D;
      });
      const student = b.views?.student ? tf.tidy(() => {
        const mask = tf.tensor4d(flip.map((f) => (f ? 1 : 0)), [flip.length, 1, 1, 1]);
        return tf.add(tf.mul(tf.image.flipLeftRight(b.views!.student!), mask), tf.mul(b.views!.student!, tf.sub(1, mask))) as tf.Tensor4D;
      }) : undefined;
      const { keys, unflipped } = flippedKeys(b.keys, flip, b.unflipped);
      return {
        images, keys, cacheable: b.cacheable,
        ...(b.cacheableSamples ? { cacheableSamples: b.cacheableSamples } : {}), ...(b.labels ? { labels: b.labels } : {}),
        ...(student ? { views: { student } } : {}), ...(unflipped ? { unflipped } : {}),
      };
    } finally {
      disposeBatch(b);
    }
  }
}

export const augment = contribution({
  slot: 'data',
  kind: 'augment',
  summary: 'horizontal flips of another source, the teacher seeing the same flip (flipped samples keyed apart, so teacher embeddings stay cached)',
  options: augmentOptions,
  async create(o, ctx) {
    const inner = await ctx.build('data', o.source);
    return new AugmentSource(o, inner, ctx.seed);
  },
});

export default contributionModule(augment);
