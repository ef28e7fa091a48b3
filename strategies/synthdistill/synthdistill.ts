import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import {
  contribution, contributionModule, disposeBatch, isLatentGenerator, studentInput,
  type DataSource, type JsonValue, type SampleKey, type StepContext, type Strategy, type StrategyInitContext,
} from '../../core/index.js';
import { agreement, gradedStd, synthDistillLoss, WORST_K_SIGMA, worstK, worstKDefault } from './loss.js';

export const synthDistillOptions = z.object({
  embeddingNorm: z.enum(['raw', 'l2']).default('raw').describe('raw: MSE on raw embeddings (code); l2: MSE on n(s), n(t) (§1.9 option)'),
  resampling: z.object({
    mode: z.enum(['graded', 'worstK', 'static']).default('graded')
      .describe('graded: every latent resampled with std α·(cos+1)/2 (code); worstK: the k lowest-cosine samples with σ (paper wording); static: fresh batches only, one update per step'),
    alpha: z.number().min(0).default(1).describe('resamplingCoef α of graded mode'),
    k: z.number().int().min(0).optional().describe('worstK: how many samples to perturb (default ⌊B/4⌋, at least 1)'),
    sigma: z.number().min(0).default(WORST_K_SIGMA).describe('worstK: the fixed std'),
  }).default({ mode: 'graded', alpha: 1, sigma: WORST_K_SIGMA }),
});
type Options = z.infer<typeof synthDistillOptions>;

/**
 * SynthDistill (strategy-specs §1.4): per step a fresh generator batch and one update; then, from
 * the student's pre-update output, per-sample stds fed back to the generator, whose next batch
 * is the resampled one, and a second update on it. `static` stops after the first update.
 */
class SynthDistill implements Strategy {
  readonly name = 'synthdistill';
  constructor(private readonly o: Options) {}

  async init(ctx: StrategyInitContext): Promise<void> {
    if (ctx.student.embeddingDim !== ctx.teacher.embeddingDim) {
      throw new Error(`synthdistill: the student regresses the teacher's embeddings, so its dimension ${ctx.student.embeddingDim} must equal the teacher's ${ctx.teacher.embeddingDim} (${ctx.teacher.name})`);
    }
    if (ctx.data) this.checkData(ctx.data);
  }

  /** §1.7: without a generator only `static` can run; refuse rather than silently fall back. */
  private checkData(data: DataSource): void {
    const mode = this.o.resampling.mode;
    if (mode !== 'static' && !isLatentGenerator(data)) {
      throw new Error(`synthdistill: resampling.mode '${mode}' resamples latents, so the stage's data must be a latent generator (pca-face, graph-generator); this data source has no latent space. Use resampling.mode: static for a fixed image set`);
    }
  }

  async step(ctx: StepContext): Promise<Readonly<Record<string, number>>> {
    const mode = this.o.resampling.mode;
    if (mode === 'static') return this.update(ctx, 'mse_fresh', false).then((r) => r.terms);
    this.checkData(ctx.data);
    const fresh = await this.update(ctx, 'mse_fresh', true);
    const b = fresh.keys.length;
    const std = mode === 'graded'
      ? gradedStd(fresh.student!, fresh.teacher!, this.o.resampling.alpha)
      : worstK(fresh.student!, fresh.teacher!, this.o.resampling.k ?? worstKDefault(b), this.o.resampling.sigma);
    const meanAgreement = agreement(fresh.student!, fresh.teacher!).reduce((a, c) => a + c, 0) / b;
    tf.dispose([fresh.student!, fresh.teacher!]);
    ctx.data.feedback!(fresh.keys, std);
    const resampled = await this.update(ctx, 'mse_resampled', false);
    return { ...fresh.terms, ...resampled.terms, agreement: meanAgreement };
  }

  /**
   * Draws a batch and makes one update on it. With `keep`, also returns the student's output of
   * that forward (before the update) and the teacher's embeddings; the caller disposes them.
   */
  private async update(ctx: StepContext, term: string, keep: boolean): Promise<{ terms: Readonly<Record<string, number>>; keys: readonly SampleKey[]; student?: tf.Tensor2D; teacher?: tf.Tensor2D }> {
    const batch = await ctx.data.next(ctx.batchSize);
    let t: tf.Tensor2D | undefined, s0: tf.Tensor2D | undefined;
    try {
      t = await ctx.teacherEmbeddings(batch);
      const tt = t;
      const terms = await ctx.update(() => {
        const s = ctx.student.forward(studentInput(batch), true);
        if (keep) s0 = tf.keep(s.clone());
        return { [term]: synthDistillLoss(s, tt, this.o.embeddingNorm) };
      });
      if (!keep) return { terms, keys: batch.keys };
      const out = { terms, keys: batch.keys, student: s0!, teacher: t };
      s0 = t = undefined; // handed to the caller
      return out;
    } finally {
      tf.dispose([t, s0].filter((x): x is tf.Tensor2D => x !== undefined));
      disposeBatch(batch); // images, views and a generator's latents
    }
  }

  variables(): readonly tf.Variable[] { return []; }
  state(): JsonValue { return null; } // no latent state crosses steps (§1.6); the generator keeps its own
  restore(): void {}
  dispose(): void {}
}

export const synthDistill = contribution({
  slot: 'strategy', kind: 'synthdistill',
  summary: 'SynthDistill: MSE to the teacher on generated faces, then a second update on latents resampled by the student\'s agreement (graded / worstK / static)',
  options: synthDistillOptions,
  async create(o, ctx) {
    if (o.resampling.mode === 'graded' && o.resampling.alpha === 0) ctx.log.warn('synthdistill: resampling.alpha 0 repeats the fresh batch (two updates on the same images)');
    return new SynthDistill(o);
  },
});

export default contributionModule(synthDistill);
