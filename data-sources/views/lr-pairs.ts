import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { componentField, contribution, hashJson, type BuildContext, type PairSource, type SampleKey } from '../../core/index.js';
import { lowResolution } from './degrade.js';

export const lrPairsOptions = z.object({
  source: componentField('pairs'),
  size: z.number().int().min(8, 'a view below 8 px is refused (strategy-specs §4.7)')
    .describe('r: both images of every pair are degraded to r×r (strategy-specs §4.6 evaluation: r ∈ {16, 24, 32}, fixed per run)'),
});
type Options = z.infer<typeof lrPairsOptions>;

/**
 * A verification benchmark with both images of every pair degraded to r×r by the low-resolution synthesis of
 * strategy-specs §4.5 B1 (Gaussian blur σ_b = 0.5·S/r, bilinear resize; no flip, no noise): the bridge evaluation.
 * The images stay r×r; each model's own preprocessing resizes them to its input (the bilinear resize to the student
 * size of B1; the teacher sees the same degraded faces upsampled).
 */
class LowResolutionPairs implements PairSource {
  readonly name: string;
  readonly protocol: string;

  constructor(private readonly o: Options, private readonly inner: PairSource) {
    this.name = `${inner.name} at ${o.size} px`;
    this.protocol = `${inner.protocol}, both images degraded to ${o.size}×${o.size} (blur σ 0.5·S/r, bilinear; strategy-specs §4.5 B1)`;
  }

  async init() {
    const r = await this.inner.init();
    return { ...r, listHash: hashJson({ inner: r.listHash, lowResolution: this.o.size }) };
  }

  async load(keys: readonly SampleKey[]): Promise<tf.Tensor4D> {
    const hr = await this.inner.load(keys);
    try {
      if (hr.shape[1] !== hr.shape[2]) throw new Error(`lr-pairs: the source's images are ${hr.shape[1]}×${hr.shape[2]}; square images are needed (set the source's size)`);
      const params = { r: this.o.size, flip: false };
      return tf.tidy(() => tf.concat(Array.from({ length: hr.shape[0] }, (_, i) => lowResolution(tf.slice(hr, [i, 0, 0, 0], [1, -1, -1, -1]), params, 0)), 0));
    } finally {
      hr.dispose();
    }
  }

  dispose(): void { this.inner.dispose(); }
}

export const lrPairs = contribution({
  slot: 'pairs',
  kind: 'lr-pairs',
  summary: 'another pair source with both images degraded to r×r (blur + bilinear, strategy-specs §4.5 B1): low-resolution evaluation',
  options: lrPairsOptions,
  async create(o: Options, ctx: BuildContext) { return new LowResolutionPairs(o, await ctx.build('pairs', o.source)); },
});
