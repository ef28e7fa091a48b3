import type * as tf from '@tensorflow/tfjs';
import type { JsonValue } from '../util/json.js';

/** What a head needs to create its class weights; known only once the stage's data is read. */
export interface HeadInit {
  readonly classes: number;
  readonly embeddingDim: number;
  readonly seed: number;
}

/**
 * A margin classification head (ArcFace, CosFace, ElasticArcFace, ...) for label-based
 * strategies. Embeddings go in raw; the head normalises them and its class weights.
 */
export interface Head {
  readonly name: string;
  /** Creates the class weights. Called once per stage before any logits. */
  init(o: HeadInit): void;
  readonly classes: number;
  /** Scaled, margin-applied logits s·f(cos θ, y): [B, C]. Differentiable in embeddings and weights. */
  logits(embeddings: tf.Tensor2D, labels: tf.Tensor1D): tf.Tensor2D;
  /** Scaled cosine logits s·cos θ with no margin (inference-time class scores): [B, C]. */
  cosineLogits(embeddings: tf.Tensor2D): tf.Tensor2D;
  /** Mean softmax cross-entropy of the margin logits. */
  loss(embeddings: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar;
  variables(): readonly tf.Variable[];
  /** Per-step randomness (e.g. ElasticArcFace margins) must resume identically. */
  state(): JsonValue;
  restore(state: JsonValue): void;
  dispose(): void;
}
