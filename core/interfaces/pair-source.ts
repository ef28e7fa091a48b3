import type * as tf from '@tensorflow/tfjs';
import type { SampleKey } from './data-source.js';

export interface VerificationPair {
  readonly a: SampleKey;
  readonly b: SampleKey;
  readonly same: boolean;
  /** 0-based fold; protocol sources fix it (LFW set k), others leave it to the contiguous rule. */
  readonly fold?: number;
}

/** A verification benchmark: pairs of images plus a loader for the images they name. */
export interface PairSource {
  readonly name: string;
  /** Label written into reports, e.g. "LFW View 2 (centre crop 110 px, not landmark-aligned)". */
  readonly protocol: string;
  init(): Promise<{ readonly pairs: readonly VerificationPair[]; readonly images: readonly SampleKey[]; readonly listHash: string }>;
  /** Loads images as [N, H, W, 3] float32 RGB 0..255. */
  load(keys: readonly SampleKey[]): Promise<tf.Tensor4D>;
  dispose(): void;
}
