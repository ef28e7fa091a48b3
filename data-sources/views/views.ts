import { z } from 'zod';
import {
  componentField, contribution, contributionModule, disposeBatch, flippedKeys, FlippingWrapperSource, hashJson,
  type Batch, type BuildContext, type DataSource, type DataSourceInfo,
} from '../../core/index.js';
import { drawViewParams, renderViews, type DegradeOptions } from './degrade.js';
import { lrPairs } from './lr-pairs.js';

export const viewsOptions = z.object({
  source: componentField('data'),
  lrSizes: z.array(z.number().int().min(8, 'a student view below 8 px is refused (strategy-specs §4.7)')).min(1).default([16, 20, 24, 28, 32])
    .describe('resolutions r of the student view, drawn uniformly per sample'),
  studentSize: z.number().int().min(8).max(512).default(32).describe('side of the student view after the r×r round trip (the bridge student\'s 32 px)'),
  noiseStd: z.number().min(0).max(64).default(0).describe('σ of Gaussian noise added to the r×r image, 0..255 units (0: none)'),
  jpegQuality: z.tuple([z.number().int().min(1).max(100), z.number().int().min(1).max(100)]).optional()
    .describe('JPEG re-encode of the r×r image at a quality drawn uniformly from [lo, hi]'),
  pFlip: z.number().min(0).max(1).default(0.5).describe('probability of flipping both views together'),
});
type Options = z.infer<typeof viewsOptions>;

/**
 * Per-model views of one source's samples (strategy-specs §4.4–4.5 B1): the teacher keeps the
 * high-resolution image, the student gets a degraded low-resolution view of the same image,
 * both flipped together. Seeded; a flipped sample gets its own key, so cached teacher
 * embeddings stay per flip state.
 */
class ViewsSource extends FlippingWrapperSource {
  private readonly degrade: DegradeOptions;

  constructor(private readonly o: Options, inner: DataSource, seed: number) {
    super('views', inner, seed, 0x7f4a7c15);
    if (o.jpegQuality && o.jpegQuality[0] > o.jpegQuality[1]) throw new Error(`views: jpegQuality [${o.jpegQuality.join(', ')}] must be [lo, hi] with lo ≤ hi`);
    this.degrade = { lrSizes: o.lrSizes, studentSize: o.studentSize, noiseStd: o.noiseStd, pFlip: o.pFlip, ...(o.jpegQuality ? { jpegQuality: o.jpegQuality } : {}) };
  }

  async init(): Promise<DataSourceInfo> {
    const info = await this.inner.init();
    const { source: _s, ...views } = this.o;
    return {
      ...info,
      name: `${info.name}, student view at r ∈ {${this.o.lrSizes.join(', ')}} → ${this.o.studentSize} px`,
      listHash: hashJson({ inner: info.listHash, views }),
    };
  }

  async next(batchSize: number): Promise<Batch> {
    const b = await this.inner.next(batchSize);
    try {
      const params = b.keys.map(() => drawViewParams(this.rng, this.degrade));
      const { teacher, student } = await renderViews(b.images, params, this.degrade);
      const { keys, unflipped } = flippedKeys(b.keys, params.map((p) => p.flip), b.unflipped);
      return { images: teacher, views: { student }, keys, cacheable: b.cacheable, ...(b.cacheableSamples ? { cacheableSamples: b.cacheableSamples } : {}), ...(b.labels ? { labels: b.labels } : {}),
        ...(unflipped ? { unflipped } : {}) };
    } finally {
      disposeBatch(b);
    }
  }
}

export const views = contribution({
  slot: 'data',
  kind: 'views',
  summary: 'per-model views of another source: the teacher sees the image, the student a blurred, downsized (noisy, JPEG) low-resolution view',
  options: viewsOptions,
  async create(o: Options, ctx: BuildContext) { return new ViewsSource(o, await ctx.build('data', o.source), ctx.seed); },
});

export default contributionModule(views, lrPairs);
