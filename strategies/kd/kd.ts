import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import {
  componentField, contribution, contributionModule, EmbeddingKdStrategy, embeddingKdOptions,
  type BuildContext, type Loss, type StrategyInitContext,
} from '../../core/index.js';

const termName = z.string().regex(/^[A-Za-z][A-Za-z0-9_]*$/, 'a term name is letters, digits and _ (it names a column of metrics.jsonl)');

export const kdOptions = embeddingKdOptions.extend({
  terms: z.record(termName, z.strictObject({
    loss: componentField('loss').describe('a loss component: { kind: cosine | mse | mse-normalised | rkd-distance | rkd-angle | sp | darkrank | cckd | …, options }'),
    weight: z.number().min(0).default(1).describe('this term\'s weight in the sum'),
  })).refine((t) => Object.keys(t).length > 0, 'name at least one term')
    .describe('named, weighted loss terms on the student\'s and the teacher\'s embeddings; each is logged under its name'),
  projection: z.enum(['auto', 'always', 'never']).default('auto')
    .describe('a learned linear map of the student embeddings to the teacher\'s dimension, seen by every term: auto = only when the dimensions differ'),
});
type Options = z.infer<typeof kdOptions>;

/**
 * Distillation as a weighted sum of named loss components on the embeddings (torchdistill's
 * WeightedSumLoss, for face KD): e.g. cosine feature KD + RKD angle, plus the identity loss of
 * a margin head (`head:`) where the data has labels. Every term is logged on its own; the
 * update uses their sum.
 */
class Kd extends EmbeddingKdStrategy<Options> {
  readonly name = 'kd';
  constructor(o: Options, private readonly losses: ReadonlyMap<string, { loss: Loss; weight: number }>, head?: ReturnType<typeof EmbeddingKdStrategy.headOf>) {
    super(o, head);
  }

  private proj?: tf.Variable;

  override async init(ctx: StrategyInitContext): Promise<void> {
    await super.init(ctx);
    const ds = ctx.student.embeddingDim, dt = ctx.teacher.embeddingDim;
    if (this.o.projection === 'never' && ds !== dt) throw new Error(`kd: student dim ${ds} ≠ teacher dim ${dt} and projection is "never"`);
    if (this.o.projection === 'always' || (this.o.projection === 'auto' && ds !== dt)) {
      const w0 = tf.initializers.glorotUniform({ seed: ctx.rng.seed() }).apply([ds, dt]);
      this.proj = tf.variable(w0, true, 'kd_projection');
      w0.dispose();
    }
  }

  protected terms(raw: tf.Tensor2D, t: tf.Tensor2D): Record<string, tf.Scalar> {
    const s = this.proj ? tf.matMul(raw, this.proj) as tf.Tensor2D : raw;
    const out: Record<string, tf.Scalar> = {};
    for (const [name, { loss, weight }] of this.losses) {
      const v = loss.compute(s, t);
      out[name] = weight === 1 ? v : tf.mul(v, weight) as tf.Scalar;
    }
    return out;
  }

  override variables(): readonly tf.Variable[] { return [...super.variables(), ...(this.proj ? [this.proj] : [])]; }
  override dispose(): void { super.dispose(); this.proj?.dispose(); }
}

export const kd = contribution({
  slot: 'strategy', kind: 'kd',
  summary: 'a weighted sum of named loss components on the embeddings (and a margin head\'s identity loss), each term logged',
  options: kdOptions,
  async create(o, ctx: BuildContext) {
    if (o.head && 'identity' in o.terms) throw new Error('kd: "identity" names the head\'s term; give the loss term another name');
    const losses = new Map<string, { loss: Loss; weight: number }>();
    for (const [name, term] of Object.entries(o.terms)) losses.set(name, { loss: await ctx.build('loss', term.loss), weight: term.weight });
    return new Kd(o, losses, EmbeddingKdStrategy.headOf(o, ctx));
  },
});

export default contributionModule(kd);
