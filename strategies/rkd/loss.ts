import * as tf from '@tensorflow/tfjs';
import { pairwiseDistance, unitOrZero } from '../../core/index.js';

export interface RkdOptions {
  /** Weight of the distance term (TFace / GKD rkd.py `w_d`). */
  readonly distanceWeight: number;
  /** Weight of the angle term (rkd.py `w_a`). */
  readonly angleWeight: number;
}

export const RKD_DEFAULTS: RkdOptions = Object.freeze({ distanceWeight: 25, angleWeight: 50 });

export interface RkdTerms {
  /** distanceWeight·distance + angleWeight·angle. */
  readonly loss: tf.Scalar;
  /** mean SmoothL1(ψ^s/μ^s, ψ^t/μ^t) over all B² entries. */
  readonly distance: tf.Scalar;
  /** mean SmoothL1 of the angle cosines over all B³ entries. */
  readonly angle: tf.Scalar;
}

/** SmoothL1 with β = 1, mean reduction: 0.5x² if |x| < 1, else |x| − 0.5 (torch F.smooth_l1_loss). */
export function smoothL1(a: tf.Tensor, b: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const x = tf.abs(tf.sub(a, b));
    const q = tf.minimum(x, 1); // quadratic part, |x| capped at β
    return tf.mean(tf.add(tf.mul(0.5, tf.square(q)), tf.sub(x, q))) as tf.Scalar;
  });
}

/** ψ/μ: distances (ψ_ii = 0) divided by their mean over the non-zero entries. */
function normalisedDistances(x: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    const d = pairwiseDistance(x, true);
    const nonZero = tf.step(d); // 1 where ψ > 0; tf.step has a zero gradient, unlike a comparison op
    return tf.div(d, tf.div(tf.sum(d), tf.sum(nonZero))) as tf.Tensor2D;
  });
}

/** Angle cosines A[i, j, k] = ⟨n(x_j − x_i), n(x_k − x_i)⟩ (rkd.py), with n(0) = 0 for j = i or k = i. */
function angles(x: tf.Tensor2D): tf.Tensor3D {
  return tf.tidy(() => {
    const e = unitOrZero(tf.sub(tf.expandDims(x, 0), tf.expandDims(x, 1))) as tf.Tensor3D; // e[i, j] = n(x_j − x_i)
    return tf.matMul(e, e, false, true);
  });
}

/**
 * Relational KD (Park et al., CVPR 2019) as in TFace / WisonZ/GKD rkd.py (strategy-specs §8):
 * 25·SmoothL1(ψ^s/μ^s, ψ^t/μ^t) + 50·SmoothL1(A^s, A^t) on the raw embeddings. Gradient flows to the student,
 * μ^s included. Needs B ≥ 2.
 */
export function rkdLoss(student: tf.Tensor2D, teacher: tf.Tensor2D, o: RkdOptions = RKD_DEFAULTS): RkdTerms {
  return tf.tidy(() => {
    const distance = rkdDistance(student, teacher);
    const angle = rkdAngle(student, teacher);
    const loss = tf.add(tf.mul(distance, o.distanceWeight), tf.mul(angle, o.angleWeight)) as tf.Scalar;
    return { loss, distance, angle };
  });
}

function atLeastTwo(x: tf.Tensor2D): void {
  if (x.shape[0] < 2) throw new Error(`rkd: needs at least 2 samples per batch, got ${x.shape[0]}`);
}

/** RKD's distance part, unweighted: mean SmoothL1(ψ^s/μ^s, ψ^t/μ^t). */
export function rkdDistance(student: tf.Tensor2D, teacher: tf.Tensor2D): tf.Scalar {
  atLeastTwo(student);
  return tf.tidy(() => smoothL1(normalisedDistances(student), normalisedDistances(teacher)));
}

/** RKD's angle part, unweighted: mean SmoothL1 of the angle cosines. */
export function rkdAngle(student: tf.Tensor2D, teacher: tf.Tensor2D): tf.Scalar {
  atLeastTwo(student);
  return tf.tidy(() => smoothL1(angles(student), angles(teacher)));
}
