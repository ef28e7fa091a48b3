import * as tf from '@tensorflow/tfjs';
import { Rng } from '../../core/index.js';

/** sl: Linear; dul: Linear → LeakyReLU → Linear; dldpo: Linear → Dropout → LeakyReLU → Linear (strategy-specs §2.3 step 3). */
export type AdaptorKind = 'sl' | 'dul' | 'dldpo';

export interface AdaptorShape {
  readonly kind: AdaptorKind;
  readonly inputDim: number;
  readonly hidden: number;
  readonly outputDim: number;
  /** LeakyReLU negative slope (0.01, MST-KD `backbones/iresnet.py`). */
  readonly slope: number;
  /** Dropout rate of dldpo (0.2). */
  readonly dropout: number;
}

// tfjs variable names must be unique while alive; checkpoints match variables by order.
let adaptors = 0;

/**
 * The multi-teacher fusion adaptor A. Weights are [in, out] matrices and biases, initialised
 * like torch.nn.Linear (U(±1/√fan_in) for both), from the given seed.
 */
export class FusionAdaptor {
  readonly w1: tf.Variable;
  readonly b1: tf.Variable;
  readonly w2?: tf.Variable;
  readonly b2?: tf.Variable;

  constructor(readonly shape: AdaptorShape, seed: number) {
    const id = ++adaptors;
    const rng = new Rng(seed);
    const linear = (fanIn: number, fanOut: number, tag: string): [tf.Variable, tf.Variable] => tf.tidy(() => {
      const bound = 1 / Math.sqrt(fanIn);
      return [
        tf.variable(tf.randomUniform([fanIn, fanOut], -bound, bound, 'float32', rng.seed()), true, `mst_adaptor_${id}_${tag}_w`),
        tf.variable(tf.randomUniform([fanOut], -bound, bound, 'float32', rng.seed()), true, `mst_adaptor_${id}_${tag}_b`),
      ];
    });
    const two = shape.kind !== 'sl';
    [this.w1, this.b1] = linear(shape.inputDim, two ? shape.hidden : shape.outputDim, 'fc1');
    if (two) [this.w2, this.b2] = linear(shape.hidden, shape.outputDim, 'fc2');
  }

  variables(): tf.Variable[] { return [this.w1, this.b1, ...(this.w2 && this.b2 ? [this.w2, this.b2] : [])]; }

  get paramCount(): number { return this.variables().reduce((n, v) => n + v.size, 0); }

  /**
   * A(u) [B, outputDim], un-normalised. `dropoutSeed` switches dldpo's dropout on (training);
   * without it dropout is the identity (inference, §2.6).
   */
  apply(u: tf.Tensor2D, dropoutSeed?: number): tf.Tensor2D {
    return tf.tidy(() => {
      let x = tf.add(tf.matMul(u, this.w1), this.b1) as tf.Tensor2D;
      if (!this.w2 || !this.b2) return x;
      if (this.shape.kind === 'dldpo' && dropoutSeed !== undefined && this.shape.dropout > 0) x = tf.dropout(x, this.shape.dropout, undefined, dropoutSeed) as tf.Tensor2D;
      x = tf.leakyRelu(x, this.shape.slope);
      return tf.add(tf.matMul(x, this.w2), this.b2) as tf.Tensor2D;
    });
  }

  dispose(): void { tf.dispose(this.variables()); }
}
