import * as tf from '@tensorflow/tfjs';

/** n(v) = v / max(‖v‖₂, 1e-12), row-wise (strategy-specs §0). */
export function l2normalize(x: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => tf.div(x, tf.maximum(tf.norm(x, 'euclidean', 1, true), 1e-12)) as tf.Tensor2D);
}

/** Mean over all elements of (a − b)² (strategy-specs §0 MSE). */
export function mse(a: tf.Tensor, b: tf.Tensor): tf.Scalar {
  return tf.tidy(() => tf.mean(tf.squaredDifference(a, b)) as tf.Scalar);
}

/** mean_i (1 − cos(a_i, b_i)), cos with the 1e-8 floor of §0. */
export function cosineDistance(a: tf.Tensor2D, b: tf.Tensor2D): tf.Scalar {
  return tf.tidy(() => {
    const dot = tf.sum(tf.mul(a, b), 1);
    const den = tf.maximum(tf.mul(tf.norm(a, 'euclidean', 1), tf.norm(b, 'euclidean', 1)), 1e-8);
    return tf.mean(tf.sub(1, tf.div(dot, den))) as tf.Scalar;
  });
}

/** Σ_i ‖n(a_i) − n(b_i)‖² / (2B): the normalised-embedding MSE of WisonZ/GKD distillation/fitnet.py (= mean(1 − cos) up to the norm floor). */
export function normalisedMse(a: tf.Tensor2D, b: tf.Tensor2D): tf.Scalar {
  return tf.tidy(() => tf.div(tf.sum(tf.squaredDifference(l2normalize(a), l2normalize(b))), 2 * a.shape[0]) as tf.Scalar);
}
