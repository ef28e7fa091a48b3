/**
 * Gradients of FusedBatchNorm and Prelu that do not spend the training step on full-size temporaries.
 *
 * tfjs-core's FusedBatchNorm gradient tiles rsqrt(variance) to the full activation size before multiplying (`Tile`
 * was the largest single cost of a wasm training step, backend-notes §2), and its Prelu gradient builds a mask, a
 * zeros tensor and two selects. The replacement registered here:
 * - on a backend that registers the fused kernels (e.g. `cpu-native`), computes the per-channel derivatives of
 *   BatchNorm in one pass and each Prelu derivative in one pass;
 * - on other backends except `cpu`, computes the BatchNorm gradient with broadcasting instead of Tile (the same
 *   formulas) and keeps tfjs's Prelu gradient;
 * - on `cpu`, the reference backend, calls tfjs-core's own gradients unchanged, so tests compare against them.
 */
import * as tf from '@tensorflow/tfjs';
import { BATCH_NORM_STATS_GRAD, PRELU_GRAD_ALPHA, PRELU_GRAD_INPUT, repeatsAlongLeadingAxes } from './native/kernels.js';

type GradFunc = tf.GradConfig['gradFunc'];
type Thunks = ReturnType<GradFunc>;

const hasKernel = (name: string) => tf.getKernel(name, tf.getBackend()) !== undefined;

function batchNormGrad(original: GradFunc): GradFunc {
  return (dys, saved, attrs): Thunks => {
    const dy = dys as tf.Tensor; // single-output kernel
    const [x, mean, variance, scale] = saved as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor | undefined];
    const { varianceEpsilon } = attrs as unknown as { varianceEpsilon: number };
    const C = x.shape.at(-1)!;
    const perChannel = mean.rank === 1 && mean.size === C && variance.size === C && (!scale || (scale.rank === 1 && scale.size === C));
    if (!perChannel || tf.getBackend() === 'cpu') return original(dys, saved, attrs);
    if (hasKernel(BATCH_NORM_STATS_GRAD) && dy.dtype === 'float32') {
      // The four per-channel sums in one pass, now: the tape runs each thunk in its own tidy, so outputs shared by
      // several thunks must be created here (the backward pass's scope frees them). dx is one broadcast multiply.
      const inputs: tf.NamedTensorMap = scale ? { dy, x, mean, variance, scale } : { dy, x, mean, variance };
      const [dMean, dVariance, dScale, dOffset] = tf.engine().runKernel(BATCH_NORM_STATS_GRAD, inputs, { varianceEpsilon }) as tf.Tensor[];
      return {
        x: () => tf.mul(dy, scale ? tf.mul(tf.rsqrt(tf.add(variance, varianceEpsilon)), scale) : tf.rsqrt(tf.add(variance, varianceEpsilon))),
        mean: () => dMean!, variance: () => dVariance!, scale: () => dScale!, offset: () => dOffset!,
      };
    }
    // Same formulas as tfjs-core, with per-channel factors broadcast instead of tiled.
    const axes = x.shape.slice(0, -1).map((_, i) => i);
    const rstd = tf.rsqrt(tf.add(variance, varianceEpsilon));
    const s = scale ?? tf.scalar(1);
    const xc = tf.sub(x, mean);
    return {
      x: () => tf.mul(dy, tf.mul(rstd, s)),
      mean: () => tf.mul(tf.sum(dy, axes), tf.neg(tf.mul(rstd, s))),
      variance: () => tf.mul(tf.sum(tf.mul(dy, xc), axes), tf.mul(tf.mul(tf.pow(rstd, 3), s), -0.5)),
      scale: () => tf.mul(tf.sum(tf.mul(dy, xc), axes), rstd),
      offset: () => tf.sum(dy, axes),
    };
  };
}

function preluGrad(original: GradFunc): GradFunc {
  return (dys, saved, attrs): Thunks => {
    const dy = dys as tf.Tensor;
    const [x, alpha] = saved as [tf.Tensor, tf.Tensor];
    if (!hasKernel(PRELU_GRAD_INPUT) || x.dtype !== 'float32' || !repeatsAlongLeadingAxes(alpha.shape, x.shape) || !tf.util.arraysEqual(dy.shape, x.shape)) {
      return original(dys, saved, attrs);
    }
    return {
      x: () => tf.engine().runKernel(PRELU_GRAD_INPUT, { dy, x, alpha }, {}) as tf.Tensor,
      alpha: () => tf.engine().runKernel(PRELU_GRAD_ALPHA, { dy, x, alpha }, {}) as tf.Tensor,
    };
  };
}

let installed = false;

/** Replaces the two gradients once per process (idempotent). */
export function installFusedGradients(): void {
  if (installed) return;
  for (const [name, wrap] of [[tf.FusedBatchNorm, batchNormGrad], [tf.Prelu, preluGrad]] as const) {
    const original = tf.getGradient(name);
    if (!original) throw new Error(`tfjs has no gradient registered for ${name}`);
    tf.registerGradient({ ...original, gradFunc: wrap(original.gradFunc) });
  }
  installed = true;
}
