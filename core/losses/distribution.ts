import * as tf from '@tensorflow/tfjs';

/**
 * Σ over all rows and classes of KL(p ‖ q) = Σ p (log p − log q), from log-probabilities (strategy-specs §0).
 * Taking logs as inputs (tf.logSoftmax) keeps masked or underflowed classes finite: p = 0 contributes 0.
 */
export function klDivergenceSum(logP: tf.Tensor, logQ: tf.Tensor): tf.Scalar {
  return tf.tidy(() => tf.sum(tf.mul(tf.exp(logP), tf.sub(logP, logQ))) as tf.Scalar);
}
