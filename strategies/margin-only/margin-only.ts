import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { componentField, contribution, contributionModule, disposeBatch, studentInput, type BuildContext, type Head, type JsonValue, type StepContext, type Strategy, type StrategyInitContext } from '../../core/index.js';

export const marginOnlyOptions = z.object({
  head: componentField('head').default({ kind: 'arcface', s: 64, m: 0.5 }).describe('the margin head whose CE alone trains the student'),
});
type Options = z.infer<typeof marginOnlyOptions>;

/** No KD (strategy-specs §8): the student trained with its margin head alone; the teacher is never run. */
class MarginOnly implements Strategy {
  readonly name = 'margin-only';
  private head?: Head;

  constructor(private readonly headP: Promise<Head>) {}

  async init(ctx: StrategyInitContext): Promise<void> {
    if (ctx.classes === undefined) throw new Error('margin-only: the head needs identity labels, and this stage\'s data has none');
    this.head = await this.headP;
    this.head.init({ classes: ctx.classes, embeddingDim: ctx.student.embeddingDim, seed: ctx.seed });
  }

  async step(ctx: StepContext): Promise<Readonly<Record<string, number>>> {
    const batch = await ctx.data.next(ctx.batchSize);
    let labels: tf.Tensor1D | undefined;
    try {
      if (!batch.labels) throw new Error('margin-only: the batch has no identity labels');
      labels = tf.tensor1d(batch.labels, 'int32');
      return await ctx.update(() => ({ identity: this.head!.loss(ctx.student.forward(studentInput(batch), true), labels!) }));
    } finally {
      labels?.dispose();
      disposeBatch(batch);
    }
  }

  variables(): readonly tf.Variable[] { return this.head?.variables() ?? []; }
  state(): JsonValue { return { head: this.head?.state() ?? null }; }
  restore(s: JsonValue): void { this.head?.restore((s as { head: JsonValue }).head); }
  dispose(): void { this.head?.dispose(); }
}

export const marginOnly = contribution({
  slot: 'strategy', kind: 'margin-only',
  summary: 'no KD: CE with the margin head alone (ArcFace s 64, m 0.5 by default); the ablation baseline',
  options: marginOnlyOptions,
  async create(o: Options, ctx: BuildContext) { return new MarginOnly(ctx.build('head', o.head)); },
});

export default contributionModule(marginOnly);
