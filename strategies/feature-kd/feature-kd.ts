import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import {
  contribution, contributionModule, cosineDistance, disposeBatch, mse, normalisedMse,
  type JsonValue, type StepContext, type Strategy, type StrategyInitContext,
} from '../../core/index.js';

export const featureKdOptions = z.object({
  loss: z.enum(['mse', 'mse-normalised', 'cosine']).default('mse-normalised')
    .describe('mse: raw embeddings (FitNet hint); mse-normalised: Σ‖n(s)−n(t)‖²/(2B); cosine: mean(1−cos)'),
  weight: z.number().positive().default(1),
  projection: z.enum(['auto', 'always', 'never']).default('auto')
    .describe('linear map of student embeddings to the teacher dimension: auto = only when dimensions differ'),
});
export type FeatureKdOptions = z.infer<typeof featureKdOptions>;

/** The feature-KD loss between (projected) student and teacher embeddings. */
export function featureKdLoss(kind: FeatureKdOptions['loss'], s: tf.Tensor2D, t: tf.Tensor2D): tf.Scalar {
  if (kind === 'mse') return mse(s, t);
  if (kind === 'cosine') return cosineDistance(s, t);
  return normalisedMse(s, t);
}

class FeatureKd implements Strategy {
  readonly name = 'feature-kd';
  private proj?: tf.Variable;

  constructor(private readonly o: FeatureKdOptions) {}

  async init(ctx: StrategyInitContext): Promise<void> {
    const ds = ctx.student.embeddingDim, dt = ctx.teacher.embeddingDim;
    if (this.o.projection === 'never' && ds !== dt) {
      throw new Error(`feature-kd: student dim ${ds} ≠ teacher dim ${dt} and projection is "never"`);
    }
    if (this.o.projection === 'always' || (this.o.projection === 'auto' && ds !== dt)) {
      const init = tf.initializers.glorotUniform({ seed: ctx.rng.seed() });
      const w0 = init.apply([ds, dt]);
      this.proj = tf.variable(w0, true, 'feature_kd_projection');
      w0.dispose(); // tf.variable copies its initial value
    }
  }

  async step(ctx: StepContext): Promise<Record<string, number>> {
    const batch = await ctx.data.next(ctx.batchSize);
    try {
      const t = await ctx.teacherEmbeddings(batch);
      try {
        return await ctx.update(() => {
          // The student sees its own view where the source gives one (e.g. degraded low resolution).
          let s = ctx.student.forward(batch.views?.student ?? batch.images, true);
          if (this.proj) s = tf.matMul(s, this.proj);
          return { [`feature_${this.o.loss}`]: tf.mul(featureKdLoss(this.o.loss, s, t), this.o.weight) as tf.Scalar };
        });
      } finally {
        t.dispose();
      }
    } finally {
      disposeBatch(batch);
    }
  }

  variables(): tf.Variable[] { return this.proj ? [this.proj] : []; }
  state(): JsonValue { return null; }
  restore(): void {}
  dispose(): void { this.proj?.dispose(); }
}

export const featureKd = contribution({
  slot: 'strategy',
  kind: 'feature-kd',
  summary: 'feature distillation: MSE or cosine between student and teacher embeddings (linear projection when dims differ)',
  options: featureKdOptions,
  async create(o) { return new FeatureKd(o); },
});

export default contributionModule(featureKd);
