import * as tf from '@tensorflow/tfjs';

// The tensor maths of the margin heads, as pure functions (formulas and sources in
// README.md beside this file). Call inside tf.tidy; everything is differentiable.

/** arccos needs |cos| < 1 for a finite gradient (strategy-specs §2.6). In float32 this is 1 − 2⁻²³. */
export const COS_CLAMP = 1 - 1e-7;

/** n(v) = v / max(‖v‖₂, 1e-12) along `axis`; the floor sits under the square root so the gradient stays finite at 0. */
export function l2normalise(x: tf.Tensor2D, axis: 0 | 1): tf.Tensor2D {
  return tf.mul(x, tf.rsqrt(tf.maximum(tf.sum(tf.square(x), axis, true), 1e-24))) as tf.Tensor2D;
}

/** cos θ [B, C] between unit embedding rows [B, D] and unit class-weight columns [D, C]. */
export function cosines(embeddings: tf.Tensor2D, weights: tf.Tensor2D): tf.Tensor2D {
  return tf.matMul(l2normalise(embeddings, 1), l2normalise(weights, 0));
}

/**
 * s · cos θ with each row's target entry replaced by `target(cos θ_y)`:
 * s·(cos + onehot ⊙ (target − cos θ_y)), so gradients reach both branches.
 */
export function marginLogits(cos: tf.Tensor2D, labels: tf.Tensor1D, s: number, target: (cosY: tf.Tensor1D) => tf.Tensor1D): tf.Tensor2D {
  const onehot = tf.oneHot(tf.cast(labels, 'int32'), cos.shape[1]).toFloat();
  const cosY = tf.sum(tf.mul(cos, onehot), 1) as tf.Tensor1D;
  const shift = tf.sub(target(cosY), cosY).expandDims(1);
  return tf.mul(tf.add(cos, tf.mul(onehot, shift)), s) as tf.Tensor2D;
}

/**
 * ArcFace target cos(θ + m), insightface arcface_torch `losses.py` (easy_margin False):
 * where cos θ ≤ cos(π − m), i.e. θ + m ≥ π, it uses cos θ − m·sin(m) instead, keeping the
 * target logit decreasing in θ.
 */
export function arcMargin(cosY: tf.Tensor1D, m: number): tf.Tensor1D {
  const c = tf.clipByValue(cosY, -COS_CLAMP, COS_CLAMP);
  const sin = tf.sqrt(tf.sub(1, tf.square(c)));
  const cosThetaM = tf.sub(tf.mul(c, Math.cos(m)), tf.mul(sin, Math.sin(m)));
  // A 0/1 blend rather than tf.where: tfjs cannot differentiate through where's comparison.
  // step(x) = 1 for x > 0, with a zero gradient; both branches are finite thanks to the clamp.
  const above = tf.step(tf.sub(cosY, Math.cos(Math.PI - m)));
  const below = tf.sub(cosY, Math.sin(Math.PI - m) * m);
  return tf.add(tf.mul(above, cosThetaM), tf.mul(tf.sub(1, above), below)) as tf.Tensor1D;
}

/** ElasticArcFace target cos(arccos(clamp(cos θ)) + m_i) with per-sample margins [B]; θ + m_i > π is not special-cased (reference behaviour). */
export function elasticArcMargin(cosY: tf.Tensor1D, margins: tf.Tensor1D): tf.Tensor1D {
  return tf.cos(tf.add(tf.acos(tf.clipByValue(cosY, -COS_CLAMP, COS_CLAMP)), margins)) as tf.Tensor1D;
}

/** CosFace / ElasticCosFace target cos θ − m (m a number or per-sample [B]). */
export function cosMargin(cosY: tf.Tensor1D, m: number | tf.Tensor1D): tf.Tensor1D {
  return tf.sub(cosY, m) as tf.Tensor1D;
}

/** CE(z, y) = mean_i −log softmax(z_i)[y_i]. */
export function softmaxCrossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  const onehot = tf.oneHot(tf.cast(labels, 'int32'), logits.shape[1]).toFloat();
  return tf.neg(tf.mean(tf.sum(tf.mul(onehot, tf.logSoftmax(logits)), 1))) as tf.Scalar;
}
