import type * as tf from '@tensorflow/tfjs';

/** Named loss terms of one update. The total is their sum; each is logged on its own. */
export type LossTerms = Readonly<Record<string, tf.Scalar>>;

/**
 * A distillation loss between the student's and the teacher's embeddings of one batch (the
 * recipe slot `loss`): pure tensor maths, no state, no variables, called inside the gradient
 * tape. The `kd` strategy combines several, each with a name and a weight; the
 * embedding-level strategies call the same functions, so each formula lives in one place.
 */
export interface Loss {
  readonly name: string;
  compute(student: tf.Tensor2D, teacher: tf.Tensor2D): tf.Scalar;
}
