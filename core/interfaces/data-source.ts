import type * as tf from '@tensorflow/tfjs';
import type { JsonValue } from '../util/json.js';

/** A key that names one image for the life of a run; caches (teacher embeddings) key on it. */
export type SampleKey = string & { readonly __brand: 'SampleKey' };
export const sampleKey = (s: string): SampleKey => s as SampleKey;

export interface Batch {
  /** [N, H, W, 3] float32 RGB 0..255. The consumer disposes. */
  readonly images: tf.Tensor4D;
  readonly keys: readonly SampleKey[];
  /** Identity labels where the source has them. */
  readonly labels?: Int32Array;
  /** Per-model views of the same samples (e.g. the student's degraded low-resolution view); disposed with the batch. */
  readonly views?: Readonly<{ student?: tf.Tensor4D }>;
  /** False for samples that never repeat (synthetic), so caches skip them. */
  readonly cacheable: boolean;
}

export interface DataSourceInfo {
  readonly name: string;
  readonly images: number;
  readonly identities?: number;
  /** Files that could not be read, with why: never crash a run over one bad file. */
  readonly skipped: readonly { readonly file: string; readonly reason: string }[];
  readonly listHash: string;
}

/** A training stream. Deterministic given its seed and restorable from `state()`. */
export interface DataSource {
  init(): Promise<DataSourceInfo>;
  next(batchSize: number): Promise<Batch>;
  /** Per-sample signal from the strategy (SynthDistill feeds back similarities). */
  feedback?(keys: readonly SampleKey[], signal: Float32Array): void;
  state(): JsonValue;
  restore(state: JsonValue): void;
  dispose(): void;
}
