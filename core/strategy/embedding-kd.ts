import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import type { BuildContext } from '../di/contribution.js';
import { disposeBatch, type Batch } from '../interfaces/data-source.js';
import type { Head } from '../interfaces/head.js';
import type { StepContext, Strategy, StrategyInitContext } from '../interfaces/strategy.js';
import { componentField } from '../recipe/fields.js';
import type { JsonValue } from '../util/json.js';

/**
 * Options every embedding-level KD strategy shares: the weight of its KD term and an
 * optional margin head whose identity loss is added (strategy-specs §8: "each loss is added
 * to the identity loss of its recipe unless stated").
 */
export const embeddingKdOptions = z.object({
  weight: z.number().min(0).default(1).describe('weight of the KD term'),
  head: componentField('head').optional().describe('margin head for an identity loss added to the KD term (needs labelled data)'),
  headWeight: z.number().min(0).default(1).describe('weight of the head\'s identity loss'),
});
export type EmbeddingKdOptions = z.infer<typeof embeddingKdOptions>;

/** The student's input for a batch: its own view where the data source made one (bridge LR). */
export function studentInput(batch: Batch): tf.Tensor4D {
  return batch.views?.student ?? batch.images;
}


/**
 * A strategy with one update per step on embedding-level terms: draw a batch, look up the
 * teacher's embeddings, run the student, add the head's identity loss when configured. A
 * concrete strategy supplies only its terms; the rest (heads, views, disposal, state) is here.
 */
export abstract class EmbeddingKdStrategy<O extends EmbeddingKdOptions = EmbeddingKdOptions> implements Strategy {
  abstract readonly name: string;
  protected head?: Head;

  constructor(protected readonly o: O, private readonly headFactory?: Promise<Head>) {}

  /** Builds the head named by the options (call from the contribution's factory). */
  static headOf(o: EmbeddingKdOptions, ctx: BuildContext): Promise<Head> | undefined {
    return o.head ? ctx.build('head', o.head) : undefined;
  }

  async init(ctx: StrategyInitContext): Promise<void> {
    if (this.headFactory) {
      if (ctx.classes === undefined) throw new Error(`${this.name}: a head needs identity labels, and this stage's data has none`);
      this.head = await this.headFactory;
      this.head.init({ classes: ctx.classes, embeddingDim: ctx.student.embeddingDim, seed: ctx.seed });
    }
  }

  /** The KD terms of one batch (inside the gradient tape). */
  protected abstract terms(student: tf.Tensor2D, teacher: tf.Tensor2D, batch: Batch): Record<string, tf.Scalar>;

  /** The teacher side of the terms; by default the teacher's embeddings of the batch as it is. */
  protected targets(ctx: StepContext, batch: Batch): Promise<tf.Tensor2D> { return ctx.teacherEmbeddings(batch); }

  async step(ctx: StepContext): Promise<Readonly<Record<string, number>>> {
    const batch = await ctx.data.next(ctx.batchSize);
    let labels: tf.Tensor1D | undefined;
    try {
      if (this.head && !batch.labels) throw new Error(`${this.name}: the head needs labels and the batch has none`);
      labels = batch.labels && this.head ? tf.tensor1d(batch.labels, 'int32') : undefined;
      const t = await this.targets(ctx, batch);
      try {
        return await ctx.update(() => {
          const s = ctx.student.forward(studentInput(batch), true);
          const out: Record<string, tf.Scalar> = {};
          for (const [k, v] of Object.entries(this.terms(s, t, batch))) out[k] = this.o.weight === 1 ? v : tf.mul(v, this.o.weight) as tf.Scalar;
          if (this.head && labels) out.identity = tf.mul(this.head.loss(s, labels), this.o.headWeight) as tf.Scalar;
          return out;
        });
      } finally {
        t.dispose();
      }
    } finally {
      labels?.dispose();
      disposeBatch(batch);
    }
  }

  variables(): readonly tf.Variable[] { return this.head?.variables() ?? []; }
  state(): JsonValue { return this.head ? { head: this.head.state() } : null; }
  restore(s: JsonValue): void { if (this.head && s && typeof s === 'object' && 'head' in s) this.head.restore((s as { head: JsonValue }).head); }
  dispose(): void { this.head?.dispose(); }
}
