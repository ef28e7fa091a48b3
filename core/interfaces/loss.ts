import type * as tf from '@tensorflow/tfjs';

/** Named loss terms of one update. The total is their sum; each is logged on its own. */
export type LossTerms = Readonly<Record<string, tf.Scalar>>;

/** Pure tensor maths: no state, no variables. */
export interface Loss<I extends readonly tf.Tensor[] = readonly tf.Tensor[]> {
  readonly name: string;
  compute(...inputs: I): tf.Scalar;
}
