import * as tf from '@tensorflow/tfjs';
import { l2normalize } from './embedding.js';

/** G = n(X) n(X)ᵀ: pairwise cosine similarities of the rows (the Gram matrix of the normalised embeddings). */
export function cosineGram(x: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    const u = l2normalize(x);
    return tf.matMul(u, u, false, true);
  });
}

/**
 * Pairwise Euclidean distances ψ_ij = sqrt(max(‖x_i‖² + ‖x_j‖² − 2 x_i·x_j, 1e-12)), the expansion used by
 * the relational KD references (TFace rkd.py `pdist`, darkrank.py `euclidean_dist`). The clamp keeps the
 * square root differentiable on the diagonal; `zeroDiagonal` then sets ψ_ii = 0 (rkd.py does, darkrank.py does not).
 */
export function pairwiseDistance(x: tf.Tensor2D, zeroDiagonal: boolean): tf.Tensor2D {
  return tf.tidy(() => {
    const sq = tf.sum(tf.square(x), 1);
    const d2 = tf.sub(tf.add(tf.expandDims(sq, 1), tf.expandDims(sq, 0)), tf.mul(2, tf.matMul(x, x, false, true)));
    const d = tf.sqrt(tf.maximum(d2, 1e-12)) as tf.Tensor2D;
    if (!zeroDiagonal) return d;
    const n = x.shape[0];
    return tf.mul(d, tf.sub(1, tf.eye(n))) as tf.Tensor2D;
  });
}

/**
 * v / max(‖v‖, eps) along the last axis, with a gradient that stays finite for v = 0 (the norm is taken as
 * sqrt(max(Σv², eps²)), the same value, so a zero vector maps to zero with zero gradient instead of NaN).
 */
export function unitOrZero(v: tf.Tensor, eps = 1e-12): tf.Tensor {
  return tf.tidy(() => tf.div(v, tf.sqrt(tf.maximum(tf.sum(tf.square(v), -1, true), eps * eps))));
}
