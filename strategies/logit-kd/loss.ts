import * as tf from '@tensorflow/tfjs';
import { klDivergenceSum } from '../../core/index.js';

/** Hinton KD temperature (TFace simple_kd.py `DistillKL(T=4)`, WisonZ/GKD distillation/kd.py). */
export const LOGIT_KD_TEMPERATURE = 4;

/**
 * Hinton KD: T²/B · Σ_i KL(softmax(z^t_i/T) ‖ softmax(z^s_i/T)) (strategy-specs §8). The T² factor keeps the
 * gradient scale independent of T. Gradient flows to the student logits only.
 */
export function logitKdLoss(studentLogits: tf.Tensor2D, teacherLogits: tf.Tensor2D, temperature = LOGIT_KD_TEMPERATURE): tf.Scalar {
  return tf.tidy(() => {
    const logQ = tf.logSoftmax(tf.div(studentLogits, temperature));
    const logP = tf.logSoftmax(tf.div(teacherLogits, temperature));
    const b = studentLogits.shape[0];
    return tf.mul(klDivergenceSum(logP, logQ), (temperature * temperature) / b) as tf.Scalar;
  });
}
