import * as tf from '@tensorflow/tfjs';
import { l2normalize } from '../../core/index.js';

/** Defaults of the project design (strategy-specs §4.6). */
export const BRIDGE_DEFAULTS = { lambdaSp: 1, lambdaMimic: 20, lambdaId: 1, outputDim: 128, s: 64, m: 0.35 } as const;

/**
 * Step A similarity-preserving term ‖G_h − G_t‖²_F / B², G_h = h hᵀ, G_t = t tᵀ (strategy-specs
 * §4.5 A2). h and t are the unit embeddings of the same B images in the compact and teacher spaces.
 */
export function similarityPreserving(h: tf.Tensor2D, t: tf.Tensor2D): tf.Scalar {
  return tf.tidy(() => {
    const b = h.shape[0];
    const gh = tf.matMul(h, h, false, true), gt = tf.matMul(t, t, false, true);
    return tf.div(tf.sum(tf.squaredDifference(gh, gt)), b * b) as tf.Scalar;
  });
}

/** 'meanL2': mean_i ‖n(s_i) − n(h_i)‖² (project design, §4.5 B3); 'sumL2': Σ_{i,d} (§4.9 third-party reading). */
export type MimicReduction = 'meanL2' | 'sumL2';

/** Step B mimic term between the student's embeddings s and the bridge targets h (both normalised here). */
export function mimicLoss(s: tf.Tensor2D, h: tf.Tensor2D, reduction: MimicReduction = 'meanL2'): tf.Scalar {
  return tf.tidy(() => {
    const perSample = tf.sum(tf.squaredDifference(l2normalize(s), l2normalize(h)), 1);
    return (reduction === 'sumL2' ? tf.sum(perSample) : tf.mean(perSample)) as tf.Scalar;
  });
}
