import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import type { Head, HeadInit } from '../interfaces/head.js';
import type { JsonValue } from '../util/json.js';
import { Rng, type RngState } from '../util/rng.js';
import { cosines, marginLogits, softmaxCrossEntropy } from './margins.js';

/** Options every margin head has. */
export const headBaseOptions = {
  s: z.number().positive().default(64).describe('logit scale s'),
  initStd: z.number().positive().default(0.01).describe('std of the normal class-weight init (ElasticFace, arcface_torch: 0.01)'),
};

// tfjs variable names must be unique while alive; checkpoints match variables by order, not name.
let headVariables = 0;

/**
 * Class weights W [D, C] (seeded normal) and the shared maths: cos θ between unit
 * embeddings and unit columns of W, logits s·f(cos θ, y), mean softmax CE. A subclass
 * supplies the target-logit function f for the labelled class.
 */
export abstract class MarginHead implements Head {
  private w: tf.Variable | undefined;
  protected rng: Rng | undefined;

  constructor(readonly name: string, readonly s: number, private readonly initStd: number) {}

  init(o: HeadInit): void {
    if (this.w) throw new Error(`${this.name}: init() called twice`);
    if (!(Number.isInteger(o.classes) && o.classes >= 2)) throw new Error(`${this.name}: needs at least 2 classes, got ${o.classes}`);
    // One stream for the weights and, after them, any per-step draws (elastic margins).
    this.rng = new Rng(o.seed);
    this.w = tf.tidy(() => tf.variable(tf.randomNormal([o.embeddingDim, o.classes], 0, this.initStd, 'float32', this.rng!.seed()), true, `${this.name}_W_${++headVariables}`));
  }

  /** 0 until init(). */
  get classes(): number { return this.w?.shape[1] ?? 0; }

  /** s · cos θ [B, C] with the margin applied to each row's labelled class. */
  protected abstract applyMargin(cos: tf.Tensor2D, labels: tf.Tensor1D): tf.Tensor2D;

  logits(embeddings: tf.Tensor2D, labels: tf.Tensor1D): tf.Tensor2D {
    this.checkLabels(labels);
    return tf.tidy(() => this.applyMargin(cosines(embeddings, this.weights() as tf.Tensor2D), labels));
  }

  cosineLogits(embeddings: tf.Tensor2D): tf.Tensor2D {
    return tf.tidy(() => tf.mul(cosines(embeddings, this.weights() as tf.Tensor2D), this.s) as tf.Tensor2D);
  }

  loss(embeddings: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
    return tf.tidy(() => softmaxCrossEntropy(this.logits(embeddings, labels), labels));
  }

  variables(): readonly tf.Variable[] { return this.w ? [this.w] : []; }

  state(): JsonValue { return null; }
  restore(_state: JsonValue): void {}

  dispose(): void {
    this.w?.dispose();
    this.w = undefined;
  }

  protected weights(): tf.Variable {
    if (!this.w) throw new Error(`${this.name}: init() must run before the head is used`);
    return this.w;
  }

  /** A label outside [0, C) would silently get an all-zero one-hot row. */
  private checkLabels(labels: tf.Tensor1D): void {
    const c = this.weights().shape[1]!;
    const bad = Array.from(labels.dataSync()).find((l) => !(Number.isInteger(l) && l >= 0 && l < c));
    if (bad !== undefined) throw new Error(`${this.name}: label ${bad} is outside the head's ${c} classes`);
  }
}

/** A head whose margin is drawn per sample per step, m_i ~ N(m, σ²), from its seeded RNG. */
export abstract class ElasticMarginHead extends MarginHead {
  constructor(name: string, s: number, initStd: number, readonly m: number, readonly sigma: number) { super(name, s, initStd); }

  /** B margins m + σ·z from the head's stream; each logits()/loss() call draws once per sample. */
  drawMargins(batch: number): Float32Array {
    if (!this.rng) throw new Error(`${this.name}: init() must run before the head is used`);
    const out = new Float32Array(batch);
    for (let i = 0; i < batch; i++) out[i] = this.m + this.sigma * this.rng.normal();
    return out;
  }

  /** The target cos for per-sample margins [B], before scaling. */
  protected abstract target(cosY: tf.Tensor1D, margins: tf.Tensor1D): tf.Tensor1D;

  protected override applyMargin(cos: tf.Tensor2D, labels: tf.Tensor1D): tf.Tensor2D {
    const margins = tf.tensor1d(this.drawMargins(cos.shape[0]));
    return marginLogits(cos, labels, this.s, (c) => this.target(c, margins));
  }

  override state(): JsonValue { return this.rng ? { rng: [...this.rng.state()] } : null; }

  override restore(state: JsonValue): void {
    const rng = (state as { rng?: unknown } | null)?.rng;
    if (!Array.isArray(rng) || rng.length !== 4 || !rng.every((v) => Number.isInteger(v))) {
      throw new Error(`${this.name}: restore() expects { rng: [4 integers] }, got ${JSON.stringify(state)}`);
    }
    if (!this.rng) throw new Error(`${this.name}: init() must run before restore()`);
    this.rng.restore(rng as unknown as RngState);
  }
}
