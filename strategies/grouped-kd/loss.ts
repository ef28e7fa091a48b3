import * as tf from '@tensorflow/tfjs';
import { klDivergenceSum, stopGradient } from '../../core/index.js';

export interface GkdGroupOptions {
  /** 'fixed': k = groupSize (distillation/gkd.py); 'cumulative': smallest scanned k with cumulative mass ≥ τ (gkd_adaptive.py). */
  readonly groupMode: 'fixed' | 'cumulative';
  /** Fixed primary-group size k (clamped to C). */
  readonly groupSize: number;
  /** Cumulative-mass threshold τ. */
  readonly tau: number;
  /** Scan step of the cumulative k: k = 1, 1 + step, 1 + 2·step, … */
  readonly step: number;
  /** Temperature of the softmax whose batch-summed mass the cumulative rule scans (code: 1). */
  readonly cumulativeTemperature: number;
  /** Logits that rank the classes (code: the student's). */
  readonly rankBy: 'student' | 'teacher';
}

export interface GkdLossOptions extends GkdGroupOptions {
  /** KD temperature T. */
  readonly temperature: number;
  /** Weights of L_BKD, L_PKD, L_SKD. */
  readonly alpha: number;
  readonly beta: number;
  readonly lambda: number;
}

/** WisonZ/GKD distillation/gkd.py (fixed k = 10000, β = 8); the cumulative preset uses β = 4 (gkd_adaptive.py). */
export const GKD_DEFAULTS: GkdLossOptions = Object.freeze({
  groupMode: 'fixed', groupSize: 10_000, tau: 0.93, step: 100, cumulativeTemperature: 1, rankBy: 'student',
  temperature: 4, alpha: 1, beta: 8, lambda: 0,
});

/** Additive mask: exp(−1e4 + |z/T|) underflows to exactly 0 in float32, independent of the logit scale (§6.6). */
const MASK = -1e4;
/** Floor of the binary group masses before the log (§6.3). */
const LOG_FLOOR = 1e-12;

/** KD ramp w(e) = min(e / warmupEpochs, 1) for the 0-based epoch e (gkd.py `warmup = 10`). */
export function gkdRamp(epoch: number, warmupEpochs = 10): number {
  return Math.min(epoch / warmupEpochs, 1);
}

/**
 * Cumulative group size (gkd_adaptive.py, §6.3 step 3): q_c = Σ_i softmax(z_i / T_c)_c, sorted descending; the
 * first k in 1, 1 + step, … (< C) whose top-k mass reaches τ·B. Host computation, no gradient. Never reached
 * (τ ≥ 1 or rounding) → C (§6.6; the reference crashes).
 */
export function cumulativeGroupSize(rankLogits: tf.Tensor2D, tau: number, step: number, temperature = 1): number {
  const [b, c] = rankLogits.shape;
  const q = tf.tidy(() => tf.sum(tf.softmax(tf.div(rankLogits, temperature)), 0).dataSync() as Float32Array);
  const sorted = Float64Array.from(q).sort().reverse();
  let mass = 0, covered = 0;
  for (let k = 1; k < c; k += step) {
    for (; covered < k; covered++) mass += sorted[covered]!;
    if (mass >= tau * b) return k;
  }
  return c;
}

/** The group size of this batch: fixed k clamped to C, or the cumulative rule. */
export function groupSize(rankLogits: tf.Tensor2D, o: GkdGroupOptions): number {
  const c = rankLogits.shape[1];
  if (o.groupMode === 'fixed') return Math.max(1, Math.min(o.groupSize, c));
  return cumulativeGroupSize(rankLogits, o.tau, o.step, o.cumulativeTemperature);
}

/**
 * Primary-group mask [B, C] (1 = in P_i): each row's top-k classes of the ranking logits with the target forced
 * in (§6.3 steps 1–2), via tf.topk rather than a full sort (§6.6). Built on a constant copy of the logits, so
 * the mask carries no gradient (tf.topk has none).
 */
export function primaryGroupMask(rankLogits: tf.Tensor2D, labels: Int32Array, k: number): tf.Tensor2D {
  const [b, c] = rankLogits.shape;
  return tf.tidy(() => {
    if (k >= c) return tf.ones([b, c]);
    const target = tf.cast(tf.oneHot(tf.tensor1d(labels, 'int32'), c), 'bool');
    const logits = stopGradient(rankLogits);
    // The target gets max + 1 rather than +Infinity: tfjs 4.22's cpu topk returns wrong indices with Infinity present.
    const forced = tf.where(target, tf.broadcastTo(tf.add(tf.max(logits), 1), [b, c]), logits);
    const { indices } = tf.topk(forced, k);
    const rows = tf.tile(tf.expandDims(tf.range(0, b, 1, 'int32'), 1), [1, k]);
    const at = tf.reshape(tf.stack([rows, indices], 2), [b * k, 2]);
    return tf.scatterND(at, tf.ones([b * k]), [b, c]) as tf.Tensor2D;
  });
}

export interface GkdTerms {
  /** T²/B · Σ_i KL(b^t_i ‖ b^s_i), binary split mass [P, S]. */
  readonly bkd: tf.Scalar;
  /** T²/B · Σ_i KL(p̂^t_{P,i} ‖ p̂^s_{P,i}), distribution inside the primary group. */
  readonly pkd: tf.Scalar;
  /** T²/B · Σ_i KL(p̂^t_{S,i} ‖ p̂^s_{S,i}), inside the secondary group (weight 0 in the reference). */
  readonly skd: tf.Scalar;
  /** α·L_BKD + β·L_PKD + λ·L_SKD; the strategy adds CE and multiplies this by gkdRamp(epoch). */
  readonly kd: tf.Scalar;
  /** The primary-group size k used for this batch. */
  readonly groupSize: number;
}

/** Binary split b_i = [Σ_{c∈P_i} p_ic, Σ_{c∈S_i} p_ic], [B, 2]. */
function splitMass(logp: tf.Tensor2D, inP: tf.Tensor, inS: tf.Tensor): tf.Tensor2D {
  return tf.tidy(() => {
    const p = tf.exp(logp);
    return tf.stack([tf.sum(tf.mul(p, inP), 1), tf.sum(tf.mul(p, inS), 1)], 1) as tf.Tensor2D;
  });
}

/**
 * Grouped KD (Zhao et al., AAAI 2023; WisonZ/GKD `gkd_loss_student_base`), strategy-specs §6.3–6.6. Inputs are the
 * margin-applied logits [B, C] of student and teacher over the same class order, and the host labels. Gradient
 * flows to the student logits; the group mask is a constant. k ≥ C: S_i is empty, L_BKD = L_SKD = 0.
 */
export function gkdLoss(student: tf.Tensor2D, teacher: tf.Tensor2D, labels: Int32Array, options: Partial<GkdLossOptions> = {}): GkdTerms {
  const o: GkdLossOptions = { ...GKD_DEFAULTS, ...options };
  const [b, c] = student.shape;
  if (labels.length !== b) throw new Error(`gkd: ${labels.length} labels for a batch of ${b}`);
  const rank = o.rankBy === 'teacher' ? teacher : student;
  const k = groupSize(rank, o);
  const scale = (o.temperature * o.temperature) / b;
  return tf.tidy(() => {
    const zs = tf.div(student, o.temperature) as tf.Tensor2D;
    const zt = tf.div(teacher, o.temperature) as tf.Tensor2D;
    const inP = primaryGroupMask(rank, labels, k);
    const inS = tf.sub(1, inP);
    const kl = (maskOut: tf.Tensor) =>
      tf.mul(klDivergenceSum(tf.logSoftmax(tf.add(zt, tf.mul(maskOut, MASK))), tf.logSoftmax(tf.add(zs, tf.mul(maskOut, MASK)))), scale) as tf.Scalar;
    const pkd = kl(inS);
    let bkd: tf.Scalar, skd: tf.Scalar;
    if (k >= c) {
      bkd = tf.scalar(0);
      skd = tf.scalar(0);
    } else {
      const bs = splitMass(tf.logSoftmax(zs), inP, inS);
      const bt = splitMass(tf.logSoftmax(zt), inP, inS);
      const logFloored = (x: tf.Tensor) => tf.log(tf.maximum(x, LOG_FLOOR));
      bkd = tf.mul(tf.sum(tf.mul(bt, tf.sub(logFloored(bt), logFloored(bs)))), scale) as tf.Scalar;
      skd = kl(inP);
    }
    const kd = tf.addN([tf.mul(bkd, o.alpha), tf.mul(pkd, o.beta), tf.mul(skd, o.lambda)]) as tf.Scalar;
    return { bkd, pkd, skd, kd, groupSize: k };
  });
}
