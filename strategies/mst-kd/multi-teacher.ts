import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { componentField, contribution, hashJson, l2normalize, type PreprocessContract, type Teacher } from '../../core/index.js';

export const multiTeacherOptions = z.object({
  teachers: z.array(componentField('teacher')).min(1)
    .describe('the specialised teachers, in concatenation order (MST-KD code order: Asian, African, Caucasian, Indian)'),
});

/**
 * Several frozen teachers seen as one: u(x) = [n(T_1(x)); …; n(T_k(x))] (strategy-specs §2.3
 * step 3.1). Each teacher applies its own preprocessing inside embed(), so any mix of kinds works.
 */
export class MultiTeacher implements Teacher {
  readonly name: string;
  readonly contract: PreprocessContract;
  readonly embeddingDim: number;
  readonly weightsHash: string;
  readonly paramCount: number;

  constructor(readonly teachers: readonly Teacher[]) {
    if (teachers.length === 0) throw new Error('multi-teacher: needs at least one teacher');
    this.name = `multi(${teachers.map((t) => t.name).join('+')})`;
    this.contract = teachers[0]!.contract; // informative only: embed() takes raw 0..255 images
    this.embeddingDim = teachers.reduce((n, t) => n + t.embeddingDim, 0);
    this.weightsHash = hashJson(teachers.map((t) => t.weightsHash));
    this.paramCount = teachers.reduce((n, t) => n + t.paramCount, 0);
  }

  /** The concatenation of the L2-normalised embeddings (the adaptor's training input). */
  embed(images: tf.Tensor4D): Promise<tf.Tensor2D> { return this.concat(images, true); }

  /** The concatenation of the raw embeddings (MST-KD's reference evaluation path, §2.6). */
  embedUnnormalised(images: tf.Tensor4D): Promise<tf.Tensor2D> { return this.concat(images, false); }

  private async concat(images: tf.Tensor4D, normalise: boolean): Promise<tf.Tensor2D> {
    const parts: tf.Tensor2D[] = [];
    try {
      for (const t of this.teachers) parts.push(await t.embed(images));
      return tf.tidy(() => tf.concat(normalise ? parts.map((p) => l2normalize(p)) : parts, 1) as tf.Tensor2D);
    } finally {
      tf.dispose(parts);
    }
  }

  dispose(): void { for (const t of this.teachers) t.dispose(); }
}

export function hasUnnormalisedEmbed(t: Teacher): t is Teacher & Pick<MultiTeacher, 'embedUnnormalised'> {
  return typeof (t as Partial<MultiTeacher>).embedUnnormalised === 'function';
}

export const multiTeacher = contribution({
  slot: 'teacher',
  kind: 'multi-teacher',
  summary: 'several teachers as one: the concatenation of their L2-normalised embeddings, in the given order (MST-KD)',
  options: multiTeacherOptions,
  async create(o, ctx) {
    const built: Teacher[] = [];
    try {
      for (const t of o.teachers) built.push(await ctx.build('teacher', t));
    } catch (e) {
      for (const t of built) t.dispose();
      throw e;
    }
    return new MultiTeacher(built);
  },
});
