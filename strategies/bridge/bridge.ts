import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import {
  componentField, contribution, contributionModule, disposeBatch, hashJson, l2normalize,
  type Head, type JsonValue, type StepContext, type Strategy, type StrategyInitContext, type Teacher,
} from '../../core/index.js';
import { BridgeHead } from './bridge-head.js';
import { BRIDGE_DEFAULTS, mimicLoss, similarityPreserving } from './loss.js';

const cosfaceDefault = { kind: 'cosface', s: BRIDGE_DEFAULTS.s, m: BRIDGE_DEFAULTS.m, initStd: 0.01 };

function stateOf(head: Head | undefined, extra: Record<string, JsonValue> = {}): JsonValue {
  return { ...extra, ...(head ? { head: head.state() } : {}) };
}

// ---- step A: cross-dataset distillation into the compact space (strategy-specs §4.5 A) ----

export const bridgeAdaptOptions = z.object({
  outputDim: z.number().int().positive().default(BRIDGE_DEFAULTS.outputDim).describe('compact dimension of the bridge head P (= the student\'s)'),
  lambdaSp: z.number().min(0).default(BRIDGE_DEFAULTS.lambdaSp).describe('λ_sp of the similarity-preserving term ‖G_h − G_t‖²_F/B²'),
  head: componentField('head').default(cosfaceDefault).describe('identity head W_A on h (discarded after step A)'),
  bnMomentum: z.number().gt(0).max(1).default(0.1).describe('BatchNorm1d running-estimate momentum (PyTorch convention)'),
  bnEpsilon: z.number().positive().default(1e-5),
});
type AdaptOptions = z.infer<typeof bridgeAdaptOptions>;

class BridgeAdapt implements Strategy {
  readonly name = 'bridge-adapt';
  private p?: BridgeHead;
  private head?: Head;

  constructor(private readonly o: AdaptOptions, private readonly headFactory: Promise<Head>) {}

  async init(ctx: StrategyInitContext): Promise<void> {
    if (ctx.classes === undefined) throw new Error('bridge-adapt: step A trains a margin head on identity labels, and this stage\'s data has none');
    this.p = new BridgeHead(ctx.teacher.embeddingDim, this.o.outputDim, ctx.seed, this.o.bnMomentum, this.o.bnEpsilon);
    this.head = await this.headFactory;
    this.head.init({ classes: ctx.classes, embeddingDim: this.o.outputDim, seed: ctx.seed + 1 });
  }

  async step(ctx: StepContext): Promise<Readonly<Record<string, number>>> {
    const [p, head] = this.ready();
    const batch = await ctx.data.next(ctx.batchSize);
    let stats: { mean: tf.Tensor1D; variance: tf.Tensor1D } | undefined;
    try {
      if (!batch.labels) throw new Error('bridge-adapt: the batch has no identity labels');
      const raw = await ctx.teacherEmbeddings(batch); // the teacher sees the HR images
      const t = l2normalize(raw);
      raw.dispose();
      const labels = tf.tensor1d(batch.labels, 'int32');
      try {
        const terms = await ctx.update(() => {
          const r = p.train(t);
          tf.dispose([stats?.mean, stats?.variance].filter((x): x is tf.Tensor1D => x !== undefined));
          stats = { mean: r.mean, variance: r.variance };
          const h = l2normalize(r.out);
          return { identity: head.loss(h, labels), sp: tf.mul(similarityPreserving(h, t), this.o.lambdaSp) as tf.Scalar };
        });
        p.track(stats!.mean.dataSync(), stats!.variance.dataSync(), t.shape[0]);
        return terms;
      } finally {
        tf.dispose([t, labels]);
      }
    } finally {
      if (stats) tf.dispose([stats.mean, stats.variance]);
      disposeBatch(batch);
    }
  }

  variables(): readonly tf.Variable[] { return [...(this.p?.variables() ?? []), ...(this.head?.variables() ?? [])]; }
  normalisationVariables(): readonly tf.Variable[] { return this.p ? [this.p.gamma, this.p.beta] : []; }

  /** x ↦ h = n(P(n(T(x)))) with the running BN estimates: the HR stream of step B. */
  stageTeacher(inner: Teacher): Teacher {
    const [p] = this.ready();
    const hash = hashJson({ teacher: inner.weightsHash, p: p.variables().map((v) => Array.from(v.dataSync())), bn: p.state() });
    return {
      name: `bridge-head(${inner.name})`, contract: inner.contract, embeddingDim: p.outputDim, weightsHash: hash,
      paramCount: inner.paramCount + p.paramCount,
      async embed(x) {
        const t = await inner.embed(x);
        try { return tf.tidy(() => l2normalize(p.infer(l2normalize(t)))); } finally { t.dispose(); }
      },
      dispose() {}, // the engine owns the strategy, and with it P
    };
  }

  state(): JsonValue { return stateOf(this.head, this.p ? { bn: this.p.state() } : {}); }
  restore(s: JsonValue): void {
    const o = s as { bn?: JsonValue; head?: JsonValue } | null;
    if (this.p && o?.bn !== undefined) this.p.restore(o.bn);
    if (this.head && o?.head !== undefined) this.head.restore(o.head);
  }
  dispose(): void { this.p?.dispose(); this.head?.dispose(); }

  private ready(): [BridgeHead, Head] {
    if (!this.p || !this.head) throw new Error('bridge-adapt: init() must run first');
    return [this.p, this.head];
  }
}

export const bridgeAdapt = contribution({
  slot: 'strategy', kind: 'bridge-adapt',
  summary: 'bridge step A: train the head P (Linear + BN1d → 128) with CosFace + λ_sp·similarity preservation on the frozen HR teacher; hands h = n(P(n(T(x)))) on',
  options: bridgeAdaptOptions,
  async create(o, ctx) { return new BridgeAdapt(o, ctx.build('head', o.head)); },
});

// ---- step B: resolution-adapted distillation (strategy-specs §4.5 B) ----

export const bridgeDistilOptions = z.object({
  stepBLoss: z.enum(['meanL2', 'sumL2']).default('meanL2')
    .describe('meanL2: λ_mimic·mean_i‖s_i − h_i‖² + λ_id·CE (project design); sumL2: Σ_{i,d}(h − s)² + CE, weights 1:1 unless set (§4.9)'),
  lambdaMimic: z.number().min(0).optional().describe('weight of the mimic term (default 20 for meanL2, 1 for sumL2)'),
  lambdaId: z.number().min(0).optional().describe('weight of the identity term (default 1)'),
  head: componentField('head').default(cosfaceDefault).describe('a fresh identity head W_S on the student\'s embeddings'),
});
type DistilOptions = z.infer<typeof bridgeDistilOptions>;

class BridgeDistil implements Strategy {
  readonly name = 'bridge-distil';
  private head?: Head;
  private readonly lambdaMimic: number;
  private readonly lambdaId: number;

  constructor(private readonly o: DistilOptions, private readonly headFactory: Promise<Head>) {
    this.lambdaMimic = o.lambdaMimic ?? (o.stepBLoss === 'sumL2' ? 1 : BRIDGE_DEFAULTS.lambdaMimic);
    this.lambdaId = o.lambdaId ?? BRIDGE_DEFAULTS.lambdaId;
  }

  async init(ctx: StrategyInitContext): Promise<void> {
    if (ctx.classes === undefined) throw new Error('bridge-distil: step B trains a margin head on identity labels, and this stage\'s data has none');
    if (ctx.student.embeddingDim !== ctx.teacher.embeddingDim) {
      throw new Error(`bridge-distil: the student mimics the bridge targets, so its dimension ${ctx.student.embeddingDim} must equal the teacher's ${ctx.teacher.embeddingDim} (${ctx.teacher.name}; use a from-stage teacher of a bridge-adapt stage)`);
    }
    this.head = await this.headFactory;
    this.head.init({ classes: ctx.classes, embeddingDim: ctx.student.embeddingDim, seed: ctx.seed + 1 });
  }

  async step(ctx: StepContext): Promise<Readonly<Record<string, number>>> {
    const head = this.head;
    if (!head) throw new Error('bridge-distil: init() must run first');
    const batch = await ctx.data.next(ctx.batchSize);
    try {
      const lr = batch.views?.student;
      if (!lr) throw new Error('bridge-distil: the student trains on the low-resolution view (batch.views.student); use a data source that makes one (kind: views)');
      if (!batch.labels) throw new Error('bridge-distil: the batch has no identity labels');
      const h = await ctx.teacherEmbeddings(batch); // HR stream: h = n(P(n(T(x_HR))))
      const labels = tf.tensor1d(batch.labels, 'int32');
      try {
        return await ctx.update(() => {
          const s = ctx.student.forward(lr, true);
          return {
            mimic: tf.mul(mimicLoss(s, h, this.o.stepBLoss), this.lambdaMimic) as tf.Scalar,
            identity: tf.mul(head.loss(s, labels), this.lambdaId) as tf.Scalar,
          };
        });
      } finally {
        tf.dispose([h, labels]);
      }
    } finally {
      disposeBatch(batch);
    }
  }

  variables(): readonly tf.Variable[] { return this.head?.variables() ?? []; }
  state(): JsonValue { return stateOf(this.head); }
  restore(s: JsonValue): void { const o = s as { head?: JsonValue } | null; if (this.head && o?.head !== undefined) this.head.restore(o.head); }
  dispose(): void { this.head?.dispose(); }
}

export const bridgeDistil = contribution({
  slot: 'strategy', kind: 'bridge-distil',
  summary: 'bridge step B: the LR student (views.student) mimics the HR bridge targets, λ_mimic 20·mean‖s − h‖² + CosFace CE (stepBLoss: sumL2 option)',
  options: bridgeDistilOptions,
  async create(o, ctx) { return new BridgeDistil(o, ctx.build('head', o.head)); },
});

export default contributionModule(bridgeAdapt, bridgeDistil);
