import * as tf from '@tensorflow/tfjs';
import { l2normalize, mse } from '../../core/index.js';

/** KD weight λ (EduardaCaldeira/MST-KD config/config.py `loss_lambda`). */
export const MST_KD_LAMBDA = 10_000;

/**
 * a-KD term λ·MSE(n(a), n(s)) (strategy-specs §2.3 step 4). The targets a are the adaptor's normalised
 * outputs; normalising them again is a no-op that keeps the loss well defined for any cached target.
 * Since ‖n(a) − n(s)‖² = 2 − 2cos, this equals (λ/d)·mean_i(2 − 2cos(a_i, s_i)).
 */
export function mstKdLoss(student: tf.Tensor2D, target: tf.Tensor2D, lambda = MST_KD_LAMBDA): tf.Scalar {
  return tf.tidy(() => tf.mul(mse(l2normalize(target), l2normalize(student)), lambda) as tf.Scalar);
}
