import * as tf from '@tensorflow/tfjs';
import { l2normalize, mse } from '../../core/index.js';

/** 'raw': MSE on the raw embeddings (otroshi/synthdistill train.py); 'l2': MSE on n(s), n(t) (§1.9 option). */
export type EmbeddingNorm = 'raw' | 'l2';

/** Below this norm an embedding has no direction; its agreement is set to 0.5 (strategy-specs §1.7). */
export const ZERO_NORM = 1e-8;

/** Defaults of the §1.9 'worstK' option (Project): perturb the B/4 worst-matched samples with σ = 0.1. */
export const WORST_K_SIGMA = 0.1;
export const worstKDefault = (batchSize: number): number => Math.max(1, Math.floor(batchSize / 4));

/** L = MSE(s, t) = (1/(B·d)) Σ_i ‖s_i − t_i‖² (strategy-specs §1.4 steps 3 and 7). */
export function synthDistillLoss(student: tf.Tensor2D, teacher: tf.Tensor2D, embeddingNorm: EmbeddingNorm = 'raw'): tf.Scalar {
  return tf.tidy(() => (embeddingNorm === 'l2' ? mse(l2normalize(student), l2normalize(teacher)) : mse(student, teacher)));
}

/**
 * Per-sample agreement c_i = (cos(s_i, t_i) + 1)/2 ∈ [0, 1], cos = s·t / max(‖s‖‖t‖, 1e-8), computed on host
 * copies (no gradient; §1.4 step 4). Guard (§1.7): ‖s_i‖ or ‖t_i‖ < 1e-8 → c_i = 0.5.
 */
export function agreement(student: tf.Tensor2D, teacher: tf.Tensor2D): Float32Array {
  const [b, d] = student.shape;
  const s = student.dataSync(), t = teacher.dataSync();
  const c = new Float32Array(b);
  for (let i = 0; i < b; i++) {
    let dot = 0, ss = 0, tt = 0;
    for (let j = 0; j < d; j++) {
      const x = s[i * d + j]!, y = t[i * d + j]!;
      dot += x * y; ss += x * x; tt += y * y;
    }
    const ns = Math.sqrt(ss), nt = Math.sqrt(tt);
    c[i] = ns < ZERO_NORM || nt < ZERO_NORM ? 0.5 : (dot / Math.max(ns * nt, 1e-8) + 1) / 2;
  }
  return c;
}

/** 'graded' resampling (code default): std_i = α·c_i for every sample (§1.4 step 5). */
export function gradedStd(student: tf.Tensor2D, teacher: tf.Tensor2D, alpha = 1): Float32Array {
  return agreement(student, teacher).map((c) => alpha * c);
}

/**
 * 'worstK' resampling (§1.9, paper wording): std_i = σ for the k samples with the lowest cosine (ties: lower
 * index first), 0 for the rest. k is clamped to [0, B].
 */
export function worstK(student: tf.Tensor2D, teacher: tf.Tensor2D, k = worstKDefault(student.shape[0]), sigma = WORST_K_SIGMA): Float32Array {
  const c = agreement(student, teacher); // monotone in cos, with the zero-norm guard
  const order = Array.from(c.keys()).sort((a, b) => c[a]! - c[b]! || a - b);
  const std = new Float32Array(c.length);
  for (const i of order.slice(0, Math.max(0, Math.min(k, c.length)))) std[i] = sigma;
  return std;
}
