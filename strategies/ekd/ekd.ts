import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import {
  componentField, contribution, contributionModule, disposeBatch, studentInput,
  type BuildContext, type Head, type JsonValue, type Logger, type StepContext, type Strategy, type StrategyInitContext,
} from '../../core/index.js';
import { EKD_DEFAULTS, EkdAnchors, type EkdAnchorState, ekdLoss } from './loss.js';

export const ekdOptions = z.object({
  weight: z.number().min(0).default(1).describe('outer weight of L_EKD (train.py: 1.0)'),
  head: componentField('head').default({ kind: 'arcface', s: 64, m: 0.4 }).describe('margin head of the identity CE (train.yaml: ArcFace s 64, m 0.4)'),
  headWeight: z.number().min(0).default(1).describe('weight of the head\'s CE'),
  generalFraction: z.number().gt(0).max(1).default(0.5).describe('the CE sees only the first round(B·generalFraction) samples of each batch: the uniform part of the general-plus-pk sampler (32 of 64); 1 = the whole batch'),
  pairSelection: z.enum(['code', 'strictCritical']).default(EKD_DEFAULTS.pairSelection).describe('code: all positives + top-k student-hard negatives; strictCritical: of those, pairs whose hard counts differ'),
  anchorInit: z.enum(['zeros', 'firstBatch']).default('zeros').describe('anchors start at 0 (code) or at the first batch\'s thresholds'),
  momentum: z.number().gt(0).max(1).default(0.01).describe('EMA momentum of the anchors'),
  topK: z.number().int().positive().default(EKD_DEFAULTS.topK).describe('hard negatives kept, by student similarity'),
  temperature: z.number().positive().default(EKD_DEFAULTS.temperature).describe('sigmoid temperature T of the soft rank'),
  posWeight: z.number().min(0).default(EKD_DEFAULTS.posWeight).describe('weight of L_pos'),
  negWeight: z.number().min(0).default(EKD_DEFAULTS.negWeight).describe('weight of L_neg'),
});
type Options = z.infer<typeof ekdOptions>;

interface EkdState {
  readonly anchors: EkdAnchorState;
  readonly emptyPositives: number;
  readonly indicesLogged: boolean;
  readonly head: JsonValue;
}

/** The number of samples the CE sees: the general (uniform) part at the front of the batch. */
export function generalCount(batch: number, fraction: number): number {
  return Math.min(batch, Math.max(1, Math.round(batch * fraction)));
}

/**
 * EKD (§5): CE(ArcFace(f^s_general, y)) + weight·L_EKD(whole batch). The anchors move once per
 * optimiser step (ekdLoss updates them on its one call inside the update) and live in state(),
 * so checkpoints, rollbacks and resumes restore them.
 */
class Ekd implements Strategy {
  readonly name = 'ekd';
  private head?: Head;
  private readonly anchors: EkdAnchors;
  private emptyPositives = 0;
  private indicesLogged = false;

  constructor(private readonly o: Options, private readonly headP: Promise<Head>, private readonly log: Logger) {
    this.anchors = new EkdAnchors(o.anchorInit, o.momentum);
  }

  async init(ctx: StrategyInitContext): Promise<void> {
    if (ctx.classes === undefined) throw new Error('ekd: needs identity labels (pairs and the ArcFace head), and this stage\'s data has none');
    this.head = await this.headP;
    this.head.init({ classes: ctx.classes, embeddingDim: ctx.student.embeddingDim, seed: ctx.seed });
  }

  async step(ctx: StepContext): Promise<Readonly<Record<string, number>>> {
    const batch = await ctx.data.next(ctx.batchSize);
    let labels: tf.Tensor1D | undefined;
    try {
      if (!batch.labels) throw new Error('ekd: the batch has no identity labels');
      const b = batch.labels.length;
      const g = generalCount(b, this.o.generalFraction);
      labels = tf.tensor1d(batch.labels.subarray(0, g), 'int32');
      const t = await ctx.teacherEmbeddings(batch);
      let info: ReturnType<typeof ekdLoss> | undefined;
      let pos = 0, neg = 0;
      try {
        const values = await ctx.update(() => {
          const s = ctx.student.forward(studentInput(batch), true);
          info = ekdLoss(s, t, batch.labels!, this.anchors, this.o);
          // Read inside the tape: its scope frees every tensor but the returned terms.
          pos = info.pos.dataSync()[0]!;
          neg = info.neg.dataSync()[0]!;
          const general = g === b ? s : tf.slice(s, [0, 0], [g, -1]);
          const ce = this.head!.loss(general, labels!);
          return {
            ekd: this.o.weight === 1 ? info.loss : tf.mul(info.loss, this.o.weight) as tf.Scalar,
            identity: this.o.headWeight === 1 ? ce : tf.mul(ce, this.o.headWeight) as tf.Scalar,
          };
        });
        const r = info!;
        if (r.emptyPositives) this.emptyPositives++;
        if (!this.indicesLogged && r.thresholdIndices.length > 0) {
          this.log.info(`ekd: threshold indices idx_k = ⌊L/A_k⌋ = [${r.thresholdIndices.join(', ')}] for L = ${r.negatives} negative pairs (batch ${b})`);
          this.indicesLogged = true;
        }
        return { ...values, ekdPos: pos, ekdNeg: neg, ekdEmptyPositives: this.emptyPositives };
      } finally {
        t.dispose();
      }
    } finally {
      labels?.dispose();
      disposeBatch(batch);
    }
  }

  /** The anchors as they are now (student, teacher). */
  get anchorValues(): EkdAnchorState { return this.anchors.state(); }

  variables(): readonly tf.Variable[] { return this.head?.variables() ?? []; }

  state(): JsonValue {
    const s: EkdState = { anchors: this.anchors.state(), emptyPositives: this.emptyPositives, indicesLogged: this.indicesLogged, head: this.head?.state() ?? null };
    return s as unknown as JsonValue;
  }

  restore(state: JsonValue): void {
    const s = state as unknown as EkdState;
    this.anchors.restore(s.anchors);
    this.emptyPositives = s.emptyPositives;
    this.indicesLogged = s.indicesLogged;
    this.head?.restore(s.head);
  }

  dispose(): void { this.head?.dispose(); }
}

export const ekd = contribution({
  slot: 'strategy', kind: 'ekd',
  summary: 'evaluation-oriented KD (Huang et al. CVPR 2022): soft ranks of pair similarities against moving FPR anchors, + ArcFace CE on the general part of the batch',
  options: ekdOptions,
  async create(o: Options, ctx: BuildContext) { return new Ekd(o, ctx.build('head', o.head), ctx.log); },
});

export default contributionModule(ekd);
