import type * as tf from '@tensorflow/tfjs';
import type { JsonValue } from '../util/json.js';
import type { LatentBatch } from './latent-generator.js';

/** A key that names one image for the life of a run; caches (teacher embeddings) key on it. */
export type SampleKey = string & { readonly __brand: 'SampleKey' };
export const sampleKey = (s: string): SampleKey => s as SampleKey;

export interface Batch {
  /** [N, H, W, 3] float32 RGB 0..255. The consumer disposes. */
  readonly images: tf.Tensor4D;
  readonly keys: readonly SampleKey[];
  /** Identity labels where the source has them. */
  readonly labels?: Int32Array;
  /** False for samples that never repeat (synthetic), so caches skip them. */
  readonly cacheable: boolean;
  /** Per-sample cacheability where a batch mixes both kinds (real + synthetic); overrides `cacheable`. */
  readonly cacheableSamples?: readonly boolean[];
  /**
   * Per-model views of the same samples (same order as `images`, which the teacher sees):
   * e.g. a degraded low-resolution student view (bridge distillation). The consumer disposes
   * them with the batch.
   */
  readonly views?: Readonly<{ student?: tf.Tensor4D }>;
  /**
   * Per sample, where the source flipped the image as augmentation: the key of the unflipped original (else null).
   * Lets a strategy take its targets from the unflipped image, as reference code that caches targets once does.
   */
  readonly unflipped?: readonly (SampleKey | null)[];
}

/** Frees a batch's tensors: the images, any per-model views and a generator's latents. */
export function disposeBatch(b: Batch): void {
  b.images.dispose();
  b.views?.student?.dispose();
  (b as Partial<LatentBatch>).latents?.dispose();
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
