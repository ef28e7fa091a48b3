import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import type { Head } from '../interfaces/head.js';
import type { StepContext } from '../interfaces/strategy.js';
import { existingPath } from '../recipe/fields.js';
import type { JsonValue } from '../util/json.js';
import type { Logger } from '../util/logger.js';
import { disposeBatch } from '../interfaces/data-source.js';

/**
 * How a frozen teacher gets class logits when it is an embedding model without its classifier
 * (logit KD, GKD: "teacher logits through a head trained or loaded for the teacher").
 */
export const teacherHeadOptions = z.object({
  steps: z.number().int().min(0).default(200).describe('updates that fit the teacher\'s head on its frozen embeddings before the student\'s first update (ignored with `file`)'),
  optimizer: z.enum(['adam', 'sgd']).default('adam').describe('the teacher head\'s own optimiser (SGD: momentum 0.9)'),
  lr: z.number().positive().default(0.01).describe('its learning rate (constant)'),
  file: existingPath('file').optional().describe('load the head\'s class weights from a JSON file { classes, embeddingDim, weights: D×C row-major } instead of fitting'),
}).describe('the frozen teacher\'s margin head: fitted at the start of the stage or loaded');
export type TeacherHeadOptions = z.infer<typeof teacherHeadOptions>;

/** The JSON file a teacher head is loaded from (and the shape kept in checkpoints). */
export interface TeacherHeadFile {
  readonly classes: number;
  readonly embeddingDim: number;
  /** W [embeddingDim, classes], row-major. */
  readonly weights: readonly number[];
}

interface TeacherHeadState {
  readonly fitted: number;
  readonly lastLoss: number | null;
  readonly file: TeacherHeadFile | null;
  readonly head: JsonValue;
}

/**
 * A margin head on the frozen teacher's embeddings. It is fitted with its own optimiser for
 * `steps` updates inside the strategy's first `step()` (before the student's first update),
 * drawing batches from the stage's data, or loaded from a file. It is deliberately not among
 * the strategy's `variables()` (the engine would train it with the student's loss); its
 * weights live in `state()`, so checkpoints, rollbacks and resumes carry it. Teacher logits
 * are computed outside the student's gradient tape and are constants there.
 */
export class FrozenTeacherHead {
  private fitted = 0;
  private lastLoss: number | null = null;
  private ready = false;

  constructor(private readonly head: Head, private readonly o: TeacherHeadOptions, private readonly label = 'teacher head', private readonly log?: Logger) {}

  init(classes: number, embeddingDim: number, seed: number): void {
    this.head.init({ classes, embeddingDim, seed });
    if (this.o.file) {
      this.setWeights(JSON.parse(readFileSync(this.o.file, 'utf8')) as TeacherHeadFile, `${this.label}: ${this.o.file}`);
      this.ready = true;
    } else {
      this.ready = this.o.steps === 0;
    }
  }

  /** Updates done so far, and the last fitting loss (null before any). */
  get progress(): { fitted: number; lastLoss: number | null; ready: boolean } { return { fitted: this.fitted, lastLoss: this.lastLoss, ready: this.ready }; }

  /** Fits the head if it is not ready yet (draws `steps` batches from ctx.data). */
  async prepare(ctx: StepContext): Promise<void> {
    if (this.ready) return;
    const opt = this.o.optimizer === 'adam' ? tf.train.adam(this.o.lr) : tf.train.momentum(this.o.lr, 0.9);
    const vars = [...this.head.variables()];
    this.log?.info(`${this.label}: fitting on the frozen teacher's embeddings, ${this.o.steps - this.fitted} updates (${this.o.optimizer}, lr ${this.o.lr})`);
    try {
      while (this.fitted < this.o.steps) {
        const batch = await ctx.data.next(ctx.batchSize);
        try {
          if (!batch.labels) throw new Error(`${this.label}: fitting needs identity labels and the batch has none`);
          const labels = tf.tensor1d(batch.labels, 'int32');
          const t = await ctx.teacherEmbeddings(batch);
          const loss = opt.minimize(() => this.head.loss(t, labels), true, vars);
          this.lastLoss = loss!.dataSync()[0]!;
          tf.dispose([loss!, t, labels]);
          if (!Number.isFinite(this.lastLoss)) throw new Error(`${this.label}: fitting loss is ${this.lastLoss} at update ${this.fitted + 1}; lower its lr`);
        } finally {
          disposeBatch(batch);
        }
        this.fitted++;
        if (this.fitted % 50 === 0 || this.fitted === this.o.steps) this.log?.info(`${this.label}: update ${this.fitted}/${this.o.steps}, CE ${this.lastLoss!.toFixed(4)}`);
      }
    } finally {
      opt.dispose();
    }
    this.ready = true;
  }

  /** Teacher logits [B, C] for teacher embeddings: margin-applied (labels given) or plain s·cos θ. A constant. */
  logits(teacher: tf.Tensor2D, labels?: tf.Tensor1D): tf.Tensor2D {
    if (!this.ready) throw new Error(`${this.label}: used before it was fitted (call prepare() first)`);
    return tf.tidy(() => {
      const z = labels ? this.head.logits(teacher, labels) : this.head.cosineLogits(teacher);
      // A copy cut off from the head's variable: no gradient can reach it.
      return tf.tensor2d(z.dataSync() as Float32Array, z.shape as [number, number]);
    });
  }

  weights(): TeacherHeadFile {
    const w = this.head.variables()[0];
    if (!w) throw new Error(`${this.label}: init() must run first`);
    return { embeddingDim: w.shape[0]!, classes: w.shape[1]!, weights: Array.from(w.dataSync()) };
  }

  state(): JsonValue {
    const s: TeacherHeadState = { fitted: this.fitted, lastLoss: this.lastLoss, file: this.fitted > 0 ? this.weights() : null, head: this.head.state() };
    return s as unknown as JsonValue;
  }

  restore(state: JsonValue): void {
    const s = state as unknown as TeacherHeadState;
    this.head.restore(s.head);
    this.fitted = s.fitted;
    this.lastLoss = s.lastLoss;
    if (s.file) this.setWeights(s.file, `${this.label} checkpoint`);
    this.ready = this.o.file !== undefined || this.fitted >= this.o.steps;
  }

  dispose(): void { this.head.dispose(); }

  private setWeights(f: TeacherHeadFile, what: string): void {
    const w = this.head.variables()[0];
    if (!w || this.head.variables().length !== 1) throw new Error(`${this.label}: expected a head with one weight matrix`);
    const [d, c] = w.shape as [number, number];
    if (f.embeddingDim !== d || f.classes !== c || f.weights.length !== d * c) {
      throw new Error(`${what}: holds a ${f.embeddingDim}×${f.classes} head (${f.weights.length} values); this stage needs ${d}×${c} (teacher embedding dim × identities)`);
    }
    const t = tf.tensor2d(Float32Array.from(f.weights), [d, c]);
    w.assign(t);
    t.dispose();
  }
}
