import type * as tf from '@tensorflow/tfjs';
import type { Rng } from '../util/rng.js';
import type { JsonValue } from '../util/json.js';
import type { Batch, DataSource } from './data-source.js';
import type { LossTerms } from './loss.js';
import type { Student } from './student.js';
import type { Teacher } from './teacher.js';

/** What the engine hands a strategy for one training step. */
export interface StepContext {
  readonly step: number;
  readonly batchSize: number;
  readonly student: Student;
  readonly teacher: Teacher;
  readonly data: DataSource;
  readonly rng: Rng;
  /** Teacher embeddings for a batch (cached per image where the batch is cacheable). */
  teacherEmbeddings(batch: Batch): Promise<tf.Tensor2D>;
  /**
   * One optimiser update of the student (and the strategy's own variables) on the named
   * terms the closure returns. Throws NonFiniteLossError naming the first bad term, before
   * any weight changes. Returns the term values.
   */
  update(lossFn: () => LossTerms): Promise<Readonly<Record<string, number>>>;
}

export interface StrategyInitContext {
  readonly student: Student;
  readonly teacher: Teacher;
  readonly rng: Rng;
  /** Identity classes in the stage's training data, where it has labels (for margin heads). */
  readonly classes?: number;
  /** Images in the stage's training data (from the data source's info), e.g. to define an epoch. */
  readonly images?: number;
  /** Seed for the strategy's own weights (heads, projections). */
  readonly seed: number;
  /** The stage's data source, so a strategy can refuse one it cannot use before training starts. */
  readonly data?: DataSource;
}

/** Owns what happens in one training step; not the loop, checkpoints, logging or evaluation. */
export interface Strategy {
  readonly name: string;
  init(ctx: StrategyInitContext): Promise<void>;
  /** Runs one step (one or more updates); returns named values to log. */
  step(ctx: StepContext): Promise<Readonly<Record<string, number>>>;
  /** Variables the strategy trains besides the student (projections, heads). */
  variables(): readonly tf.Variable[];
  /** Of those, the normalisation parameters (BatchNorm scale/offset): no weight decay with `decayBatchNorm: false`. */
  normalisationVariables?(): readonly tf.Variable[];
  /**
   * A teacher this stage hands to later stages (`teacher: { kind: from-stage, stage: <name> }`),
   * built from the stage's teacher and the strategy's trained variables: MST-KD's fused
   * adaptor, bridge's compact head on the teacher. Without it a later stage gets the student
   * as it was at the end of this stage. The engine keeps the strategy alive while it is used.
   */
  stageTeacher?(teacher: Teacher): Teacher;
  state(): JsonValue;
  restore(state: JsonValue): void;
  dispose(): void;
}
