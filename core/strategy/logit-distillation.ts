import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import type { BuildContext } from '../di/contribution.js';
import { softmaxCrossEntropy } from '../heads/margins.js';
import type { Head } from '../interfaces/head.js';
import type { StepContext, Strategy, StrategyInitContext } from '../interfaces/strategy.js';
import { componentField } from '../recipe/fields.js';
import type { JsonValue } from '../util/json.js';
import type { Logger } from '../util/logger.js';
import { disposeBatch } from '../interfaces/data-source.js';
import { studentInput } from './embedding-kd.js';
import { FrozenTeacherHead, teacherHeadOptions } from './teacher-head.js';

/**
 * Options of a logit-level KD strategy: a margin head for the student (trained, CE added),
 * the same kind of head for the frozen teacher (fitted or loaded), and how teacher logits
 * are taken. Defaults follow WisonZ/GKD: CosFace s = 64, m = 0.4 on both sides.
 */
export const logitDistillationOptions = z.object({
  head: componentField('head').default({ kind: 'cosface', s: 64, m: 0.4 }).describe('margin head of the student (and, a separate instance, of the teacher); same class order'),
  ceWeight: z.number().min(0).default(1).describe('weight of the student head\'s cross-entropy on its margin logits'),
  teacherHead: teacherHeadOptions.prefault({}),
  teacherLogitsWithMargin: z.boolean().default(true).describe('teacher logits with the margin on the labelled class (code) or plain s·cos θ'),
});
export type LogitDistillationOptions = z.infer<typeof logitDistillationOptions>;

/** The KD part of one batch, computed inside the gradient tape. */
export interface LogitKdTerms {
  /** Loss terms (summed by the engine with the CE). */
  readonly terms: Record<string, tf.Scalar>;
  /** Extra values to log (not trained on). */
  readonly log?: Record<string, number>;
}

/**
 * One update per step on CE(z^s, y) + KD(z^s, z^t): z^s the student's margin logits, z^t the
 * frozen teacher head's logits (a constant). The teacher head is fitted in the first step.
 */
export abstract class LogitDistillationStrategy<O extends LogitDistillationOptions = LogitDistillationOptions> implements Strategy {
  abstract readonly name: string;
  protected head?: Head;
  protected teacherHead?: FrozenTeacherHead;
  /** Images in the stage's data (from the data source's info), when known. */
  protected images?: number;

  constructor(protected readonly o: O, private readonly heads: Promise<[Head, Head]>, private readonly log?: Logger) {}

  /** Builds the student's and the teacher's heads (two instances of `o.head`). */
  static headsOf(o: LogitDistillationOptions, ctx: BuildContext): Promise<[Head, Head]> {
    return Promise.all([ctx.build('head', o.head), ctx.build('head', o.head)]);
  }

  async init(ctx: StrategyInitContext): Promise<void> {
    if (ctx.classes === undefined) throw new Error(`${this.name}: needs identity labels (the heads' classes), and this stage's data has none`);
    const [student, teacher] = await this.heads;
    this.head = student;
    this.head.init({ classes: ctx.classes, embeddingDim: ctx.student.embeddingDim, seed: ctx.seed });
    this.teacherHead = new FrozenTeacherHead(teacher, this.o.teacherHead, `${this.name}: teacher head`, this.log);
    this.teacherHead.init(ctx.classes, ctx.teacher.embeddingDim, ctx.seed + 1);
    if (ctx.images !== undefined) this.images = ctx.images;
  }

  /** The KD terms of one batch (inside the tape; zt is a constant). */
  protected abstract kdTerms(zs: tf.Tensor2D, zt: tf.Tensor2D, labels: Int32Array, ctx: StepContext): LogitKdTerms;

  async step(ctx: StepContext): Promise<Readonly<Record<string, number>>> {
    const head = this.head!, th = this.teacherHead!;
    const fitting = !th.progress.ready;
    await th.prepare(ctx);
    const batch = await ctx.data.next(ctx.batchSize);
    let labels: tf.Tensor1D | undefined, zt: tf.Tensor2D | undefined;
    try {
      if (!batch.labels) throw new Error(`${this.name}: the batch has no identity labels`);
      labels = tf.tensor1d(batch.labels, 'int32');
      const t = await ctx.teacherEmbeddings(batch);
      zt = th.logits(t, this.o.teacherLogitsWithMargin ? labels : undefined);
      t.dispose();
      let extra: Record<string, number> = {};
      const values = await ctx.update(() => {
        const s = ctx.student.forward(studentInput(batch), true);
        const zs = head.logits(s, labels!);
        const kd = this.kdTerms(zs, zt!, batch.labels!, ctx);
        extra = kd.log ?? {};
        const ce = softmaxCrossEntropy(zs, labels!);
        return { ce: this.o.ceWeight === 1 ? ce : tf.mul(ce, this.o.ceWeight) as tf.Scalar, ...kd.terms };
      });
      return { ...values, ...extra, ...(fitting && th.progress.lastLoss !== null ? { teacherHeadLoss: th.progress.lastLoss } : {}) };
    } finally {
      tf.dispose([labels!, zt!].filter((x) => x !== undefined));
      disposeBatch(batch);
    }
  }

  variables(): readonly tf.Variable[] { return this.head?.variables() ?? []; }

  state(): JsonValue { return { head: this.head?.state() ?? null, teacherHead: this.teacherHead?.state() ?? null }; }

  restore(s: JsonValue): void {
    const o = s as { head: JsonValue; teacherHead: JsonValue | null };
    this.head?.restore(o.head);
    if (o.teacherHead !== null) this.teacherHead?.restore(o.teacherHead);
  }

  dispose(): void {
    this.head?.dispose();
    this.teacherHead?.dispose();
  }
}
