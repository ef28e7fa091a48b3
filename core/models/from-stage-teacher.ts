import type * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { contribution } from '../di/contribution.js';
import type { Teacher } from '../interfaces/teacher.js';

export const fromStageOptions = z.object({
  stage: z.string().min(1).describe('name of an earlier stage of this recipe'),
  use: z.enum(['auto', 'student']).default('auto')
    .describe('auto: what the stage\'s strategy hands on (e.g. an MST-KD adaptor), else its student; student: the student as it was when that stage ended'),
});

/** A view of an earlier stage's output that leaves its disposal to the engine, which owns it. */
class BorrowedTeacher implements Teacher {
  constructor(private readonly inner: Teacher) {}
  get name() { return this.inner.name; }
  get contract() { return this.inner.contract; }
  get embeddingDim() { return this.inner.embeddingDim; }
  get weightsHash() { return this.inner.weightsHash; }
  get paramCount() { return this.inner.paramCount; }
  embed(images: tf.Tensor4D): Promise<tf.Tensor2D> { return this.inner.embed(images); }
  dispose(): void {}
}

/** The teacher an earlier stage produced (bridge: teacher → HR bridge model → LR student). */
export const fromStageTeacher = contribution({
  slot: 'teacher',
  kind: 'from-stage',
  summary: 'the output of an earlier stage of the same recipe (its strategy\'s hand-off, or its student)',
  options: fromStageOptions,
  async create(o, ctx) {
    if (!ctx.stageOutput) throw new Error('from-stage: only a stage\'s teacher can name an earlier stage (inside `facedistill run`)');
    return new BorrowedTeacher(await ctx.stageOutput(o.stage, o.use));
  },
});
