import * as tf from '@tensorflow/tfjs';
import { cosineGram } from '../../core/index.js';

/** A_k: anchor k sits at the FPR 1/A_k of the batch negatives, 1e-1 … 1e-6 (TFace ekd.py `anchor`). */
export const EKD_ANCHOR_DIVISORS: readonly number[] = Object.freeze([10, 100, 1000, 10_000, 100_000, 1_000_000]);

export type EkdPairSelection = 'code' | 'strictCritical';
export type EkdAnchorInit = 'zeros' | 'firstBatch';

export interface EkdOptions {
  /** 'code': all positives + top-k student-hard negatives; 'strictCritical': of those, only pairs whose hard counts differ (§5.8). */
  readonly pairSelection: EkdPairSelection;
  /** Hard negatives kept, by student similarity (ekd.py `topk`). */
  readonly topK: number;
  /** Sigmoid temperature T (ekd.py `t`). */
  readonly temperature: number;
  /** Weights of L_pos and L_neg. */
  readonly posWeight: number;
  readonly negWeight: number;
}

/** Tencent/TFace recognition/tasks/ekd/distillation/ekd.py (strategy-specs §5.4). */
export const EKD_DEFAULTS: EkdOptions = Object.freeze({
  pairSelection: 'code', topK: 2000, temperature: 0.01, posWeight: 0.02, negWeight: 0.01,
});

/** Bound of the sigmoid exponent (ekd.py clamps −(x − a)/T to [−50, 50]). */
const EXP_CLAMP = 50;

export interface BatchThresholds {
  /** τ^s_k = ñ^s[idx_k], τ^t_k = ñ^t[idx_k] (each side sorted descending on its own). */
  readonly student: Float32Array;
  readonly teacher: Float32Array;
  /** idx_k = ⌊L / A_k⌋. */
  readonly indices: readonly number[];
  /** Positions in the negative list, by student similarity descending (ties: lower position first). */
  readonly studentOrder: Int32Array;
}

const descending = (v: ArrayLike<number>): Int32Array =>
  Int32Array.from(Array.from({ length: v.length }, (_, i) => i).sort((a, b) => v[b]! - v[a]! || a - b));

/**
 * Batch thresholds of §5.3 step 3, on host copies (no gradient). Needs at least one negative pair.
 */
export function batchThresholds(negStudent: ArrayLike<number>, negTeacher: ArrayLike<number>, divisors = EKD_ANCHOR_DIVISORS): BatchThresholds {
  const l = negStudent.length;
  if (l === 0 || negTeacher.length !== l) throw new Error(`ekd: batchThresholds needs equal, non-empty negative lists (${l}, ${negTeacher.length})`);
  const studentOrder = descending(negStudent);
  const teacherOrder = descending(negTeacher);
  const indices = divisors.map((a) => Math.floor(l / a));
  return {
    student: Float32Array.from(indices, (k) => negStudent[studentOrder[k]!]!),
    teacher: Float32Array.from(indices, (k) => negTeacher[teacherOrder[k]!]!),
    indices,
    studentOrder,
  };
}

/** Serialisable anchor state (a checkpoint must hold it: resuming with zero anchors changes the loss, §5.5). */
export type EkdAnchorState = { readonly student: readonly number[]; readonly teacher: readonly number[]; readonly updates: number };

/** The moving anchors a^s, a^t (§5.3 step 4): zero-initialised, a ← m·τ + (1 − m)·a with m = 0.01, no bias correction. */
export class EkdAnchors {
  readonly student: Float32Array;
  readonly teacher: Float32Array;
  private count = 0;

  constructor(readonly init: EkdAnchorInit = 'zeros', readonly momentum = 0.01, size = EKD_ANCHOR_DIVISORS.length) {
    this.student = new Float32Array(size);
    this.teacher = new Float32Array(size);
  }

  /** Number of EMA updates so far. */
  get updates(): number { return this.count; }

  /** 'firstBatch' (§5.8 option) takes the first batch's τ as is; every other update is the EMA. */
  update(tauStudent: ArrayLike<number>, tauTeacher: ArrayLike<number>): void {
    const m = this.init === 'firstBatch' && this.count === 0 ? 1 : this.momentum;
    for (let k = 0; k < this.student.length; k++) {
      this.student[k] = m * tauStudent[k]! + (1 - m) * this.student[k]!;
      this.teacher[k] = m * tauTeacher[k]! + (1 - m) * this.teacher[k]!;
    }
    this.count++;
  }

  state(): EkdAnchorState {
    return { student: Array.from(this.student), teacher: Array.from(this.teacher), updates: this.count };
  }

  restore(s: EkdAnchorState): void {
    if (s.student.length !== this.student.length || s.teacher.length !== this.teacher.length) {
      throw new Error(`ekd: anchor state has ${s.student.length}/${s.teacher.length} anchors, expected ${this.student.length}`);
    }
    this.student.set(s.student);
    this.teacher.set(s.teacher);
    this.count = s.updates;
  }
}

/**
 * Soft rank r(x; a) = Σ_k 1 / (1 + exp(clamp(−(x − a_k)/T, −50, 50))) elementwise (§5.3 step 5): a soft count of
 * the anchors that x exceeds. Same shape as x. The clamp zeroes the gradient far from every anchor, as in the reference.
 */
export function softRank(x: tf.Tensor, anchors: ArrayLike<number>, temperature = EKD_DEFAULTS.temperature): tf.Tensor {
  return tf.tidy(() => {
    const a = tf.tensor1d(Array.from(anchors));
    const e = tf.clipByValue(tf.div(tf.sub(a, tf.expandDims(x, -1)), temperature), -EXP_CLAMP, EXP_CLAMP);
    return tf.sum(tf.reciprocal(tf.add(1, tf.exp(e))), -1);
  });
}

/** Hard rank Σ_k 1[x > a_k]: the number of operating thresholds a pair passes (strictCritical, §5.8). */
export function hardRank(x: number, anchors: ArrayLike<number>): number {
  let r = 0;
  for (let k = 0; k < anchors.length; k++) if (x > anchors[k]!) r++;
  return r;
}

export interface EkdLossResult {
  /** posWeight·L_pos + negWeight·L_neg. */
  readonly loss: tf.Scalar;
  /** L_pos = mean over the selected positives of (r^s − r^t)²; 0 when there are none. */
  readonly pos: tf.Scalar;
  /** L_neg over the selected hard negatives; 0 when there are none. */
  readonly neg: tf.Scalar;
  /** No positive pair in the batch: L_pos was set to 0 (the strategy counts these, §5.6). */
  readonly emptyPositives: boolean;
  /** False when the batch had no negative pair (anchor update skipped, §5.6). */
  readonly anchorsUpdated: boolean;
  /** idx_k of this batch (empty without negatives), for the once-per-run log of §5.6. */
  readonly thresholdIndices: readonly number[];
  readonly positives: number;
  readonly negatives: number;
  readonly selectedPositives: number;
  readonly selectedNegatives: number;
}

/**
 * EKD loss (Huang et al., CVPR 2022; TFace ekd.py), strategy-specs §5.3 steps 1–9. Embeddings are normalised
 * here. Updates `anchors` (once per call, before the soft ranks, as the reference does). Gradient flows only
 * through the student similarities: the thresholds, the anchors, the pair selection and the teacher are constants.
 * The selected pairs enter as 0/1 masks over the B×B similarity matrix instead of a gather, which is equivalent
 * and keeps the gradient on backends without a gather gradient kernel (wasm lacks UnsortedSegmentSum).
 */
export function ekdLoss(student: tf.Tensor2D, teacher: tf.Tensor2D, labels: ArrayLike<number>, anchors: EkdAnchors,
  options: Partial<EkdOptions> = {}): EkdLossResult {
  const o: EkdOptions = { ...EKD_DEFAULTS, ...options };
  const b = student.shape[0];
  if (labels.length !== b || teacher.shape[0] !== b) throw new Error(`ekd: batch sizes differ (student ${b}, teacher ${teacher.shape[0]}, labels ${labels.length})`);
  let meta: Omit<EkdLossResult, 'loss' | 'pos' | 'neg'> | undefined;
  const terms = tf.tidy(() => {
    const ss = cosineGram(student);
    const st = cosineGram(teacher);
    const hs = ss.dataSync(), ht = st.dataSync();

    // Strict upper triangle in row-major order, split by label (steps 1–2).
    const pos: number[] = [], neg: number[] = [];
    for (let i = 0; i < b; i++) for (let j = i + 1; j < b; j++) (labels[i] === labels[j] ? pos : neg).push(i * b + j);

    let thresholdIndices: readonly number[] = [];
    let hardNeg: number[] = [];
    if (neg.length > 0) {
      const th = batchThresholds(neg.map((p) => hs[p]!), neg.map((p) => ht[p]!));
      anchors.update(th.student, th.teacher);
      thresholdIndices = th.indices;
      hardNeg = Array.from(th.studentOrder.subarray(0, o.topK), (q) => neg[q]!);
    }
    const critical = (p: number) => hardRank(hs[p]!, anchors.student) !== hardRank(ht[p]!, anchors.teacher);
    const selPos = o.pairSelection === 'strictCritical' ? pos.filter(critical) : pos;
    const selNeg = o.pairSelection === 'strictCritical' ? hardNeg.filter(critical) : hardNeg;
    meta = {
      emptyPositives: pos.length === 0,
      anchorsUpdated: neg.length > 0,
      thresholdIndices,
      positives: pos.length, negatives: neg.length, selectedPositives: selPos.length, selectedNegatives: selNeg.length,
    };

    const sq = tf.square(tf.sub(softRank(ss, anchors.student, o.temperature), softRank(st, anchors.teacher, o.temperature)));
    // Mean of (r^s − r^t)² over a pair set; an empty set gives 0 (still connected to the student, zero gradient).
    const meanOver = (pairs: readonly number[]): tf.Scalar => {
      const m = new Float32Array(b * b);
      for (const p of pairs) m[p] = 1;
      return tf.div(tf.sum(tf.mul(sq, tf.tensor2d(m, [b, b]))), Math.max(pairs.length, 1)) as tf.Scalar;
    };
    const lPos = meanOver(selPos);
    const lNeg = meanOver(selNeg);
    const loss = tf.add(tf.mul(lPos, o.posWeight), tf.mul(lNeg, o.negWeight)) as tf.Scalar;
    return { loss, pos: lPos, neg: lNeg };
  });
  return { ...terms, ...meta! };
}
