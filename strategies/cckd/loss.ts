import * as tf from '@tensorflow/tfjs';
import { cosineGram } from '../../core/index.js';

export interface CckdOptions {
  /** RBF kernel width γ (TFace cc.py default 0.4). */
  readonly gamma: number;
  /** Number P of Taylor terms p = 0 … P−1 (strategy-specs §8 decision: 2; option 3). */
  readonly terms: 2 | 3;
}

export const CCKD_DEFAULTS: CckdOptions = Object.freeze({ gamma: 0.4, terms: 2 });

/** K = Σ_{p=0}^{P−1} e^{−2γ} (2γ)^p / p! · G^{∘p}: the P-term Taylor expansion of the Gaussian RBF kernel on G. */
export function correlationMatrix(x: tf.Tensor2D, o: CckdOptions = CCKD_DEFAULTS): tf.Tensor2D {
  return tf.tidy(() => {
    const g = cosineGram(x);
    let k: tf.Tensor = tf.onesLike(g); // p = 0: G^{∘0} = 1 (a constant, kept for the reference's K values)
    let power: tf.Tensor = k;
    let coef = 1; // (2γ)^p / p!
    for (let p = 1; p < o.terms; p++) {
      power = tf.mul(power, g);
      coef *= (2 * o.gamma) / p;
      k = tf.add(k, tf.mul(power, coef));
    }
    return tf.mul(k, Math.exp(-2 * o.gamma)) as tf.Tensor2D;
  });
}

/** CCKD: MSE(K^s, K^t), mean over the B×B entries (strategy-specs §8, TFace cc.py). */
export function cckdLoss(student: tf.Tensor2D, teacher: tf.Tensor2D, o: CckdOptions = CCKD_DEFAULTS): tf.Scalar {
  return tf.tidy(() => tf.mean(tf.squaredDifference(correlationMatrix(student, o), correlationMatrix(teacher, o))) as tf.Scalar);
}
