/**
 * Training-mode BatchNormalization as one fused op on backends that provide it (`cpu-native`).
 *
 * tf.layers' BatchNormalization trains through tf.moments (mean, subtract, square, mean) and FusedBatchNorm, whose
 * gradients walk the full-size activation about twenty times per layer (ones-filled tensors, broadcast multiplies,
 * divides, adds); on cpu-native that was most of a 112 px MobileFaceNet step. Here the layer's `call` is wrapped: in
 * training mode, with the default last-axis, centre and scale, on a backend that registers BN_TRAIN, it runs one
 * kernel for the batch statistics and the normalisation, and its gradient is two passes (parameter sums, input
 * gradient). Everything else (inference, other axes, other backends) runs tfjs's own code. The layer class, its
 * weights, its moving-average update and its serialisation are unchanged: only the arithmetic path differs.
 */
import * as tf from '@tensorflow/tfjs';
import { BN_TRAIN, BN_TRAIN_GRAD_INPUT, BN_TRAIN_GRAD_PARAMS } from './native/kernels.js';

interface BatchNormLayer {
  axis: number; epsilon: number; momentum: number; center: boolean; scale: boolean;
  gamma: tf.LayerVariable; beta: tf.LayerVariable; movingMean: tf.LayerVariable; movingVariance: tf.LayerVariable;
}
type Call = (this: BatchNormLayer, inputs: tf.Tensor | tf.Tensor[], kwargs: { training?: boolean }) => tf.Tensor | tf.Tensor[];

function registerGradient(): void {
  tf.registerGradient({
    kernelName: BN_TRAIN,
    inputsToSave: ['x', 'scale'],
    outputsToSave: [false, true, true],
    // Outputs 1 and 2 (batch mean and variance) only feed the moving averages, which are not differentiated.
    gradFunc: (dys, saved, attrs) => {
      const dy = (dys as tf.Tensor[])[0]!;
      const [x, scale, mean, variance] = saved as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor];
      const { varianceEpsilon } = attrs as unknown as { varianceEpsilon: number };
      // Shared by all three thunks, so computed here (the tape runs each thunk in its own tidy).
      const [dScale, dOffset] = tf.engine().runKernel(BN_TRAIN_GRAD_PARAMS, { dy, x, mean, variance }, { varianceEpsilon }) as tf.Tensor[];
      return {
        x: () => tf.engine().runKernel(BN_TRAIN_GRAD_INPUT, { dy, x, scale, mean, variance, dScale: dScale!, dOffset: dOffset! }, { varianceEpsilon }) as tf.Tensor,
        scale: () => dScale!,
        offset: () => dOffset!,
      };
    },
  });
}

let installed = false;

/** Wraps tf.layers' BatchNormalization.call once per process (idempotent). */
export function installFusedBatchNormTraining(): void {
  if (installed) return;
  registerGradient();
  // The class from tfjs's serialization registry (building a probe layer would shift every later layer's auto name).
  const entry = tf.serialization.SerializationMap.getMap().classNameMap['BatchNormalization'];
  if (!entry) throw new Error('tf.layers BatchNormalization is not registered');
  const proto = (entry[0] as unknown as { prototype: { call: Call } }).prototype;
  const original = proto.call;
  proto.call = function (this: BatchNormLayer, inputs, kwargs) {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    const axis = x ? (this.axis >= 0 ? this.axis : this.axis + x.rank) : -1;
    if (!kwargs?.training || !x || Array.isArray(inputs) && inputs.length !== 1 || axis !== x.rank - 1 || x.dtype !== 'float32' ||
      !this.center || !this.scale || tf.getKernel(BN_TRAIN, tf.getBackend()) === undefined) {
      return original.call(this, inputs, kwargs);
    }
    return tf.tidy(() => {
      const [y, mean, variance] = tf.engine().runKernel(BN_TRAIN, { x, scale: this.gamma.read(), offset: this.beta.read() },
        { varianceEpsilon: this.epsilon }) as tf.Tensor[];
      // The moving averages, exactly as tfjs-layers updates them.
      for (const [v, value] of [[this.movingMean, mean!], [this.movingVariance, variance!]] as const) {
        tf.tidy(() => {
          const orig = v.read();
          v.write(tf.sub(orig, tf.mul(tf.sub(orig, value), 1 - this.momentum)));
        });
      }
      return y!;
    });
  };
  installed = true;
}
