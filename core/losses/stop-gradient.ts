import * as tf from '@tensorflow/tfjs';

/**
 * A constant copy of x made through host memory, so no gradient flows back through it. tfjs has no
 * stop-gradient op, and ops without gradient functions (TopK, ScatterNd, comparisons) make tf.grad throw
 * whenever they sit between the differentiated input and the loss; building selections on this copy avoids that.
 */
export function stopGradient<T extends tf.Tensor>(x: T): T {
  return tf.tensor(x.dataSync(), x.shape, x.dtype) as T;
}
