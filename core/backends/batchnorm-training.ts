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
 *
 * PReLU after such a BatchNorm (conv → BN → PReLU, most of a MobileFaceNet) is fused too, from the PReLU side: the
 * BatchNorm output remembers its input and batch statistics, and a PReLU layer called on it in training mode
 * computes prelu(BN(x)) from x in one op whose gradient is two passes for both layers (instead of PReLU's two and
 * BatchNorm's two, with a full-size gradient between them). The BatchNorm op itself then no longer leads to the loss,
 * so the tape skips its gradient. Nothing changes meaning: a BatchNorm output that something else also consumes (a
 * sub-model's output, a residual) still gets its gradient through the BatchNorm op.
 */
import * as tf from '@tensorflow/tfjs';
import { BN_PRELU_TRAIN, BN_PRELU_TRAIN_GRAD, BN_TRAIN, BN_TRAIN_GRAD_INPUT, BN_TRAIN_GRAD_PARAMS, type BnPreluAttrs, repeatsAlongLeadingAxes } from './native/kernels.js';

interface BatchNormLayer {
  axis: number; epsilon: number; momentum: number; center: boolean; scale: boolean;
  gamma: tf.LayerVariable; beta: tf.LayerVariable; movingMean: tf.LayerVariable; movingVariance: tf.LayerVariable;
}
type Call<L> = (this: L, inputs: tf.Tensor | tf.Tensor[], kwargs: { training?: boolean }) => tf.Tensor | tf.Tensor[];
interface PReLULayer { alpha: tf.LayerVariable }

/** A training-mode BatchNorm output → what the fused PReLU needs to recompute it. */
interface BnSource {
  x: tf.Tensor; scale: tf.Tensor; offset: tf.Tensor; xId: tf.DataId; scaleId: tf.DataId; offsetId: tf.DataId;
  /** The gradient tape recording when y was made: fused only under the same one (else y is a constant there). */
  tape: unknown;
  attrs: BnPreluAttrs;
}
const activeTape = (): unknown => (tf.engine() as unknown as { state: { activeTape: unknown } }).state.activeTape;
const bnSources = new WeakMap<tf.Tensor, BnSource>();

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

function registerPreluGradient(): void {
  tf.registerGradient({
    kernelName: BN_PRELU_TRAIN,
    inputsToSave: ['x', 'scale', 'offset', 'alpha'],
    gradFunc: (dz, saved, attrs) => {
      const [x, scale, offset, alpha] = saved as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor];
      // One kernel for all four (the tape runs each thunk in its own tidy, so shared outputs are made here).
      const [dx, dScale, dOffset, dAlpha] = tf.engine().runKernel(BN_PRELU_TRAIN_GRAD, { dz: dz as tf.Tensor, x, scale, offset, alpha },
        attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
      return { x: () => dx!, scale: () => dScale!, offset: () => dOffset!, alpha: () => dAlpha! };
    },
  });
}

const layerClass = <L>(name: string) => {
  // The class from tfjs's serialization registry (building a probe layer would shift every later layer's auto name).
  const entry = tf.serialization.SerializationMap.getMap().classNameMap[name];
  if (!entry) throw new Error(`tf.layers ${name} is not registered`);
  return (entry[0] as unknown as { prototype: { call: Call<L> } }).prototype;
};

let installed = false;

/** Wraps tf.layers' BatchNormalization.call and PReLU.call once per process (idempotent). */
export function installFusedBatchNormTraining(): void {
  if (installed) return;
  registerGradient();
  registerPreluGradient();
  const proto = layerClass<BatchNormLayer>('BatchNormalization');
  const original = proto.call;
  proto.call = function (this: BatchNormLayer, inputs, kwargs) {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    const axis = x ? (this.axis >= 0 ? this.axis : this.axis + x.rank) : -1;
    if (!kwargs?.training || !x || Array.isArray(inputs) && inputs.length !== 1 || axis !== x.rank - 1 || x.dtype !== 'float32' ||
      !this.center || !this.scale || tf.getKernel(BN_TRAIN, tf.getBackend()) === undefined) {
      return original.call(this, inputs, kwargs);
    }
    return tf.tidy(() => {
      const scale = this.gamma.read(), offset = this.beta.read();
      const [y, mean, variance] = tf.engine().runKernel(BN_TRAIN, { x, scale, offset }, { varianceEpsilon: this.epsilon }) as tf.Tensor[];
      if (tf.getKernel(BN_PRELU_TRAIN, tf.getBackend()) !== undefined) {
        bnSources.set(y!, { x, scale, offset, xId: x.dataId, scaleId: scale.dataId, offsetId: offset.dataId, tape: activeTape(), attrs: {
          mean: mean!.dataSync() as Float32Array, variance: variance!.dataSync() as Float32Array, varianceEpsilon: this.epsilon,
        } });
      }
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

  const preluProto = layerClass<PReLULayer>('PReLU');
  const originalPrelu = preluProto.call;
  preluProto.call = function (this: PReLULayer, inputs, kwargs) {
    const y = Array.isArray(inputs) ? (inputs.length === 1 ? inputs[0] : undefined) : inputs;
    const src = y && kwargs?.training ? bnSources.get(y) : undefined;
    const alpha = src && this.alpha.read();
    // Per-channel alpha only (sharedAxes over all but the last axis), and only while BatchNorm's input is alive, x, γ, β
    // are the values y was computed with (an optimiser step in between assigns the variables new data), and under the
    // same gradient tape (a y made outside a gradient scope is a constant inside it).
    if (!src || !alpha || src.x.isDisposed || src.scale.isDisposed || src.offset.isDisposed || src.x.dataId !== src.xId ||
      src.scale.dataId !== src.scaleId || src.offset.dataId !== src.offsetId || src.tape !== activeTape() || alpha.size !== src.attrs.mean.length ||
      !repeatsAlongLeadingAxes(alpha.shape, y!.shape) || tf.getKernel(BN_PRELU_TRAIN, tf.getBackend()) === undefined) {
      return originalPrelu.call(this, inputs, kwargs);
    }
    return tf.engine().runKernel(BN_PRELU_TRAIN, { x: src.x, scale: src.scale, offset: src.offset, alpha },
      src.attrs as unknown as tf.NamedAttrMap) as tf.Tensor;
  };
  installed = true;
}
