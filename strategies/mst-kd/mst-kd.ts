import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import {
  componentField, contribution, contributionModule, disposeBatch, EmbeddingKdStrategy, embeddingKdOptions, hashJson, l2normalize,
  type Batch, type Head, type JsonValue, type StepContext, type Strategy, type StrategyInitContext, type Teacher,
} from '../../core/index.js';
import { FusionAdaptor } from './adaptor.js';
import { MST_KD_LAMBDA, mstKdLoss } from './loss.js';
import { hasUnnormalisedEmbed, multiTeacher } from './multi-teacher.js';

// ---- stage 1: the fusion adaptor (strategy-specs §2.3 step 3) ----

export const mstAdaptorOptions = z.object({
  adaptor: z.enum(['sl', 'dul', 'dldpo']).default('sl')
    .describe('sl: Linear; dul: Linear → LeakyReLU → Linear; dldpo: Linear → Dropout → LeakyReLU → Linear'),
  hidden: z.number().int().positive().default(512).describe('hidden width of dul/dldpo (middle_layer_size)'),
  outputDim: z.number().int().positive().default(512).describe('adaptor output = the students\' target dimension'),
  leakySlope: z.number().min(0).default(0.01).describe('LeakyReLU negative slope'),
  dropout: z.number().min(0).max(0.95).default(0.2).describe('dldpo dropout rate (training only)'),
  head: componentField('head').default({ kind: 'elastic-arcface', s: 64, m: 0.5, sigma: 0.0125, initStd: 0.01 })
    .describe('identity head on n(A(u)); the reference adaptor uses ElasticArcFace with the class-default σ 0.0125 (§2.8 option: 0.05)'),
  selectBy: z.enum(['lowest-epoch-loss', 'last']).default('lowest-epoch-loss')
    .describe('adaptor handed to later stages: the one at the end of the epoch with the lowest summed training loss (reference, §2.3 step 5; an epoch = ⌈images / batch⌉ steps; the last weights if no epoch completed) or the last one'),
  adaptorEvalNormalizeInputs: z.boolean().default(true)
    .describe('hand-off input: true = the normalised concatenation (as in training); false = raw teacher outputs (MST-KD reference evaluation code, needs a multi-teacher)'),
});
type AdaptorOptions = z.infer<typeof mstAdaptorOptions>;

/** The running selection of §2.5: per-epoch summed loss, and the adaptor weights at the end of the best epoch. */
interface Selection {
  epoch: number;
  stepInEpoch: number;
  epochLoss: number;
  best?: { epoch: number; loss: number; weights: Float32Array[] };
}

const toBase64 = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');
const fromBase64 = (s: string) => { const b = Buffer.from(s, 'base64'); return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)); };

class MstAdaptor implements Strategy {
  readonly name = 'mst-adaptor';
  private adaptor?: FusionAdaptor;
  private head?: Head;
  private images = 0;
  private sel: Selection = { epoch: 0, stepInEpoch: 0, epochLoss: 0 };

  constructor(private readonly o: AdaptorOptions, private readonly headFactory: Promise<Head>) {}

  async init(ctx: StrategyInitContext): Promise<void> {
    if (ctx.classes === undefined) throw new Error('mst-adaptor: the adaptor trains on identity labels, and this stage\'s data has none');
    this.adaptor = new FusionAdaptor({ kind: this.o.adaptor, inputDim: ctx.teacher.embeddingDim, hidden: this.o.hidden, outputDim: this.o.outputDim, slope: this.o.leakySlope, dropout: this.o.dropout }, ctx.seed);
    this.head = await this.headFactory;
    this.head.init({ classes: ctx.classes, embeddingDim: this.o.outputDim, seed: ctx.seed + 1 });
    this.images = ctx.images ?? 0;
  }

  /** Adds a step's loss to its epoch; at an epoch's end keeps the adaptor if that epoch's summed loss is the lowest. */
  private select(loss: number, batchSize: number): void {
    if (this.o.selectBy !== 'lowest-epoch-loss' || this.images <= 0) return;
    const sel = this.sel;
    sel.epochLoss += loss;
    sel.stepInEpoch++;
    if (sel.stepInEpoch < Math.ceil(this.images / batchSize)) return;
    if (!sel.best || sel.epochLoss < sel.best.loss) {
      sel.best = { epoch: sel.epoch, loss: sel.epochLoss, weights: this.ready()[0].variables().map((v) => Float32Array.from(v.dataSync())) };
    }
    sel.epoch++;
    sel.stepInEpoch = 0;
    sel.epochLoss = 0;
  }

  async step(ctx: StepContext): Promise<Readonly<Record<string, number>>> {
    const [adaptor, head] = this.ready();
    const batch = await ctx.data.next(ctx.batchSize);
    try {
      if (!batch.labels) throw new Error('mst-adaptor: the batch has no identity labels');
      // The student is untouched: the loss depends only on the adaptor and the head, so only they get gradients.
      const u = await ctx.teacherEmbeddings(batch);
      const labels = tf.tensor1d(batch.labels, 'int32');
      try {
        const dropoutSeed = this.o.adaptor === 'dldpo' ? ctx.rng.seed() : undefined;
        const terms = await ctx.update(() => ({ identity: head.loss(adaptor.apply(u, dropoutSeed), labels) }));
        this.select(terms.identity!, ctx.batchSize);
        return terms;
      } finally {
        tf.dispose([u, labels]);
      }
    } finally {
      disposeBatch(batch);
    }
  }

  variables(): readonly tf.Variable[] { return [...(this.adaptor?.variables() ?? []), ...(this.head?.variables() ?? [])]; }

  /** x ↦ n(A(u(x))) with dropout off: the targets of the distillation stage. */
  stageTeacher(inner: Teacher): Teacher {
    const [adaptor] = this.ready();
    const normalise = this.o.adaptorEvalNormalizeInputs;
    if (!normalise && !hasUnnormalisedEmbed(inner)) throw new Error(`mst-adaptor: adaptorEvalNormalizeInputs false needs a multi-teacher (raw teacher outputs), the stage teacher is ${inner.name}`);
    // The selected epoch's weights go into the adaptor itself: training has ended when a stage hands off.
    const best = this.sel.best;
    if (best) adaptor.variables().forEach((v, i) => tf.tidy(() => v.assign(tf.tensor(best.weights[i]!, v.shape))));
    const weights = adaptor.variables().map((v) => Array.from(v.dataSync()));
    return {
      name: `mst-adaptor-${this.o.adaptor}(${inner.name})`,
      contract: inner.contract,
      embeddingDim: this.o.outputDim,
      weightsHash: hashJson({ teacher: inner.weightsHash, normalise, adaptor: weights }),
      paramCount: inner.paramCount + adaptor.paramCount,
      async embed(x) {
        const u = normalise || !hasUnnormalisedEmbed(inner) ? await inner.embed(x) : await inner.embedUnnormalised(x);
        try { return tf.tidy(() => l2normalize(adaptor.apply(u))); } finally { u.dispose(); }
      },
      dispose() {}, // the engine owns the strategy, and with it the adaptor
    };
  }

  /** Which epoch's adaptor is handed on (undefined: the last weights). */
  get selectedEpoch(): number | undefined { return this.sel.best?.epoch; }

  state(): JsonValue {
    if (!this.head) return null;
    const { epoch, stepInEpoch, epochLoss, best } = this.sel;
    return {
      head: this.head.state(),
      selection: { epoch, stepInEpoch, epochLoss, best: best ? { epoch: best.epoch, loss: best.loss, weights: best.weights.map(toBase64) } : null },
    };
  }

  restore(s: JsonValue): void {
    if (!this.head || !s || typeof s !== 'object' || Array.isArray(s)) return;
    const st = s as { head?: JsonValue; selection?: { epoch: number; stepInEpoch: number; epochLoss: number; best: { epoch: number; loss: number; weights: string[] } | null } };
    if (st.head !== undefined) this.head.restore(st.head);
    const sel = st.selection;
    if (sel) {
      this.sel = { epoch: sel.epoch, stepInEpoch: sel.stepInEpoch, epochLoss: sel.epochLoss,
        ...(sel.best ? { best: { epoch: sel.best.epoch, loss: sel.best.loss, weights: sel.best.weights.map(fromBase64) } } : {}) };
    }
  }
  dispose(): void { this.adaptor?.dispose(); this.head?.dispose(); }

  private ready(): [FusionAdaptor, Head] {
    if (!this.adaptor || !this.head) throw new Error('mst-adaptor: init() must run first');
    return [this.adaptor, this.head];
  }
}

export const mstAdaptor = contribution({
  slot: 'strategy', kind: 'mst-adaptor',
  summary: 'MST-KD stage 1: train the fusion adaptor n(A(u)) on identity labels (ElasticArcFace σ 0.0125), student untouched; hands n(A(u)) to later stages',
  options: mstAdaptorOptions,
  async create(o, ctx) { return new MstAdaptor(o, ctx.build('head', o.head)); },
});

// ---- stage 2: the student (strategy-specs §2.3 step 4; §3.3 with a single teacher) ----

export const mstKdOptions = embeddingKdOptions.extend({
  lambda: z.number().min(0).default(MST_KD_LAMBDA).describe('λ of λ·MSE(n(a), n(s)) (loss_lambda)'),
  flipTargets: z.boolean().default(false)
    .describe('true: a sample the data source flipped gets the target of the flipped image; false (reference, §2.6): the target of the unflipped image'),
});
type KdOptions = z.infer<typeof mstKdOptions>;

class MstKd extends EmbeddingKdStrategy<KdOptions> {
  readonly name = 'mst-kd';
  override async init(ctx: StrategyInitContext): Promise<void> {
    if (ctx.student.embeddingDim !== ctx.teacher.embeddingDim) {
      throw new Error(`mst-kd: the student regresses the targets, so its dimension ${ctx.student.embeddingDim} must equal the teacher's ${ctx.teacher.embeddingDim} (${ctx.teacher.name})`);
    }
    await super.init(ctx);
  }
  protected terms(s: tf.Tensor2D, t: tf.Tensor2D): Record<string, tf.Scalar> { return { mst_kd: mstKdLoss(s, t, this.o.lambda) }; }

  /** Reference targets (§2.6): for a sample the source flipped, the teacher's embedding of the unflipped image. */
  protected override async targets(ctx: StepContext, batch: Batch): Promise<tf.Tensor2D> {
    const u = batch.unflipped;
    if (this.o.flipTargets === true || !u || u.every((k) => k === null)) return ctx.teacherEmbeddings(batch);
    const images = tf.tidy(() => {
      const back = tf.tensor4d(u.map((k) => (k ? 1 : 0)), [u.length, 1, 1, 1]);
      return tf.add(tf.mul(tf.image.flipLeftRight(batch.images), back), tf.mul(batch.images, tf.sub(1, back))) as tf.Tensor4D;
    });
    try {
      const keys = batch.keys.map((k, i) => u[i] ?? k);
      return await ctx.teacherEmbeddings({ images, keys, cacheable: batch.cacheable, ...(batch.cacheableSamples ? { cacheableSamples: batch.cacheableSamples } : {}) });
    } finally {
      images.dispose();
    }
  }
}

export const mstKd = contribution({
  slot: 'strategy', kind: 'mst-kd',
  summary: 'MST-KD stage 2: λ·MSE(n(a), n(s)), λ 1e4 (a-KD); with head: elastic-arcface (σ 0.05) it is EAF-KD',
  options: mstKdOptions,
  async create(o, ctx) { return new MstKd(o, EmbeddingKdStrategy.headOf(o, ctx)); },
});

export default contributionModule(multiTeacher, mstAdaptor, mstKd);
