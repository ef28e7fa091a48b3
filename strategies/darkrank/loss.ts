import * as tf from '@tensorflow/tfjs';
import { l2normalize, pairwiseDistance } from '../../core/index.js';

export interface DarkRankOptions {
  /** Score scale α in s_ij = −α‖f̂_i − f̂_j‖^β (TFace darkrank.py default 3). */
  readonly alpha: number;
  /** Distance exponent β (default 3). */
  readonly beta: number;
  /** Length of the transferred ranking list (default 3). */
  readonly listLength: number;
}

export const DARKRANK_DEFAULTS: DarkRankOptions = Object.freeze({ alpha: 3, beta: 3, listLength: 3 });

/** s_ij = −α‖f̂_i − f̂_j‖^β with the reference's distance clamp (ψ_ii = 1e-6, not 0). */
function scores(x: tf.Tensor2D, o: DarkRankOptions): tf.Tensor2D {
  return tf.tidy(() => tf.mul(-o.alpha, tf.pow(pairwiseDistance(l2normalize(x), false), o.beta)) as tf.Tensor2D);
}

/**
 * For each anchor i, the teacher's top-`length` neighbours j ≠ i by score, best first (host, no gradient).
 * Ties: lower index first. The reference sorts the whole row and drops position 0, assumed to be i itself;
 * excluding i explicitly gives the same list unless two embeddings coincide.
 */
export function teacherRanking(teacherScores: Float32Array, b: number, length: number): Int32Array[] {
  const lists: Int32Array[] = [];
  for (let i = 0; i < b; i++) {
    const others = Array.from({ length: b }, (_, j) => j).filter((j) => j !== i);
    others.sort((p, q) => teacherScores[i * b + q]! - teacherScores[i * b + p]! || p - q);
    lists.push(Int32Array.from(others.slice(0, length)));
  }
  return lists;
}

/**
 * Hard DarkRank (Chen et al., AAAI 2018) as in TFace darkrank.py (strategy-specs §8):
 * L = −mean_i log P_PL(π_i | s^s_i), P_PL(π | s) = Π_m exp(s_{π_m}) / Σ_{m' ≥ m} exp(s_{π_m'}), where π_i is the
 * teacher's top-3 order of i's neighbours. The list length is clamped to B − 1. The student scores are picked
 * with one-hot masks rather than gather (the wasm backend has no gradient kernel for gather).
 */
export function darkRankLoss(student: tf.Tensor2D, teacher: tf.Tensor2D, o: DarkRankOptions = DARKRANK_DEFAULTS): tf.Scalar {
  const b = student.shape[0];
  if (b < 2) throw new Error(`darkrank: needs at least 2 samples per batch, got ${b}`);
  const length = Math.min(o.listLength, b - 1);
  return tf.tidy(() => {
    const lists = teacherRanking(scores(teacher, o).dataSync() as Float32Array, b, length);
    const ss = scores(student, o);
    const picked: tf.Tensor1D[] = [];
    for (let m = 0; m < length; m++) {
      const onehot = new Float32Array(b * b);
      lists.forEach((l, i) => { onehot[i * b + l[m]!] = 1; });
      picked.push(tf.sum(tf.mul(ss, tf.tensor2d(onehot, [b, b])), 1));
    }
    const ordered = tf.stack(picked, 1); // [B, length], ordered[i, m] = s^s_{i, π_i(m)}
    let logP: tf.Tensor = tf.zeros([b]);
    for (let m = 0; m < length; m++) {
      const tail = tf.slice(ordered, [0, m], [b, length - m]);
      logP = tf.add(logP, tf.sub(picked[m]!, tf.logSumExp(tail, 1)));
    }
    return tf.neg(tf.mean(logP)) as tf.Scalar;
  });
}
