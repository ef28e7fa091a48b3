import * as tf from '@tensorflow/tfjs';
import { cosineGram } from '../../core/index.js';

/**
 * Similarity-preserving KD on embeddings: ‖G^s − G^t‖²_F / B², G = n(F) n(F)ᵀ (strategy-specs §8,
 * TFace similarity_perserving.py, which applies it to the embedding rather than a feature map).
 */
export function spLoss(student: tf.Tensor2D, teacher: tf.Tensor2D): tf.Scalar {
  return tf.tidy(() => {
    const b = student.shape[0];
    return tf.div(tf.sum(tf.squaredDifference(cosineGram(student), cosineGram(teacher))), b * b) as tf.Scalar;
  });
}
