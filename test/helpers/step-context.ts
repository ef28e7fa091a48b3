import * as tf from '@tensorflow/tfjs';
import type { DataSource, LossTerms, StepContext, Strategy, Student, Teacher } from '../../core/interfaces/index.js';
import { Rng } from '../../core/util/rng.js';

/**
 * A StepContext like the engine's, without the engine: `update` takes the gradient of the
 * summed terms over the student's and the strategy's variables and (when `apply`) steps Adam.
 * Records each update's terms, so tests can count updates per step.
 */
export function stepContext(o: {
  strategy: Strategy; student: Student & { model?: tf.LayersModel }; teacher: Teacher; data: DataSource; batchSize: number; apply: boolean;
  teacherEmbeddings?: StepContext['teacherEmbeddings']; lr?: number; seed?: number;
}): { ctx: StepContext; opt: tf.Optimizer; updates: Record<string, number>[] } {
  const opt = tf.train.adam(o.lr ?? 0.01);
  const updates: Record<string, number>[] = [];
  const ctx: StepContext = {
    step: 0, batchSize: o.batchSize, student: o.student, teacher: o.teacher, data: o.data, rng: new Rng(o.seed ?? 1),
    teacherEmbeddings: o.teacherEmbeddings ?? ((b) => o.teacher.embed(b.images)),
    async update(fn: () => LossTerms) {
      const vars = [...(o.student.model?.trainableWeights.map((w) => w.read() as tf.Variable) ?? []), ...o.strategy.variables()];
      let terms: Record<string, tf.Scalar> = {};
      const { value, grads } = tf.variableGrads(() => {
        const t = fn();
        terms = Object.fromEntries(Object.entries(t).map(([k, v]) => [k, tf.keep(v)]));
        return tf.addN(Object.values(t)) as tf.Scalar;
      }, vars);
      if (o.apply) opt.applyGradients(grads as never);
      const out = Object.fromEntries(Object.entries(terms).map(([k, v]) => [k, v.dataSync()[0]!]));
      tf.dispose([value, ...Object.values(grads), ...Object.values(terms)]);
      updates.push(out);
      return out;
    },
  };
  return { ctx, opt, updates };
}

/** A teacher that returns fixed rows (cycled to the batch size), whatever the images. */
export function fixedTeacher(name: string, rows: number[][]): Teacher {
  const dim = rows[0]!.length;
  return {
    name, contract: { inputSize: [16, 16], colour: 'rgb', normalise: 'symmetric', crop: '' }, embeddingDim: dim, weightsHash: `hash-${name}`, paramCount: 10,
    async embed(x) { const n = x.shape[0]; return tf.tensor2d(Array.from({ length: n }, (_, i) => rows[i % rows.length]!), [n, dim]); },
      dispose() {},
  };
}
