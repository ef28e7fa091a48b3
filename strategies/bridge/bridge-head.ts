import * as tf from '@tensorflow/tfjs';
import { Rng, type JsonValue } from '../../core/index.js';

let heads = 0; // tfjs variable names must be unique while alive

/**
 * The bridge head P = Linear(in → out, bias) + BatchNorm1d(out) (strategy-specs §4.3), PyTorch
 * semantics: training normalises with the batch mean and biased variance and moves the running
 * estimates by `momentum` (the variance estimate unbiased); inference uses the running estimates.
 * The running estimates are host arrays saved through the strategy's state, not trained variables.
 */
export class BridgeHead {
  readonly w: tf.Variable;
  readonly b: tf.Variable;
  readonly gamma: tf.Variable;
  readonly beta: tf.Variable;
  runningMean: Float32Array;
  runningVar: Float32Array;

  constructor(readonly inputDim: number, readonly outputDim: number, seed: number, readonly momentum = 0.1, readonly epsilon = 1e-5) {
    const id = ++heads;
    const rng = new Rng(seed);
    const bound = 1 / Math.sqrt(inputDim); // torch.nn.Linear's default init
    [this.w, this.b, this.gamma, this.beta] = tf.tidy(() => [
      tf.variable(tf.randomUniform([inputDim, outputDim], -bound, bound, 'float32', rng.seed()), true, `bridge_head_${id}_w`),
      tf.variable(tf.randomUniform([outputDim], -bound, bound, 'float32', rng.seed()), true, `bridge_head_${id}_b`),
      tf.variable(tf.ones([outputDim]), true, `bridge_head_${id}_gamma`),
      tf.variable(tf.zeros([outputDim]), true, `bridge_head_${id}_beta`),
    ]);
    this.runningMean = new Float32Array(outputDim);
    this.runningVar = new Float32Array(outputDim).fill(1);
  }

  variables(): tf.Variable[] { return [this.w, this.b, this.gamma, this.beta]; }
  get paramCount(): number { return this.variables().reduce((n, v) => n + v.size, 0); }

  /** Training forward: P(t) with batch statistics, and those statistics (kept; pass them to `track`). */
  train(t: tf.Tensor2D): { out: tf.Tensor2D; mean: tf.Tensor1D; variance: tf.Tensor1D } {
    const [out, mean, variance] = tf.tidy(() => {
      const z = tf.add(tf.matMul(t, this.w), this.b);
      const { mean, variance } = tf.moments(z, 0);
      const y = tf.add(tf.mul(tf.div(tf.sub(z, mean), tf.sqrt(tf.add(variance, this.epsilon))), this.gamma), this.beta);
      return [y, tf.keep(mean.clone()), tf.keep(variance.clone())];
    });
    return { out: out as tf.Tensor2D, mean: mean as tf.Tensor1D, variance: variance as tf.Tensor1D };
  }

  /** Moves the running estimates towards one batch's statistics (biased variance in, unbiased used). */
  track(mean: ArrayLike<number>, biasedVariance: ArrayLike<number>, batch: number): void {
    const unbias = batch > 1 ? batch / (batch - 1) : 1;
    for (let j = 0; j < this.outputDim; j++) {
      this.runningMean[j] = (1 - this.momentum) * this.runningMean[j]! + this.momentum * mean[j]!;
      this.runningVar[j] = (1 - this.momentum) * this.runningVar[j]! + this.momentum * biasedVariance[j]! * unbias;
    }
  }

  /** Inference forward with the running estimates. */
  infer(t: tf.Tensor2D): tf.Tensor2D {
    return tf.tidy(() => {
      const z = tf.add(tf.matMul(t, this.w), this.b);
      const norm = tf.div(tf.sub(z, tf.tensor1d(this.runningMean)), tf.sqrt(tf.add(tf.tensor1d(this.runningVar), this.epsilon)));
      return tf.add(tf.mul(norm, this.gamma), this.beta) as tf.Tensor2D;
    });
  }

  state(): JsonValue { return { runningMean: Array.from(this.runningMean), runningVar: Array.from(this.runningVar) }; }

  restore(s: JsonValue): void {
    const o = s as { runningMean?: unknown; runningVar?: unknown } | null;
    const ok = (a: unknown): a is number[] => Array.isArray(a) && a.length === this.outputDim && a.every((v) => typeof v === 'number');
    if (!ok(o?.runningMean) || !ok(o?.runningVar)) throw new Error(`bridge head: restore() expects runningMean and runningVar of length ${this.outputDim}`);
    this.runningMean = Float32Array.from(o.runningMean);
    this.runningVar = Float32Array.from(o.runningVar);
  }

  dispose(): void { tf.dispose(this.variables()); }
}
