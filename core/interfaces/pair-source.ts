import type * as tf from '@tensorflow/tfjs';
import type { SampleKey } from './data-source.js';

export interface VerificationPair {
  readonly a: SampleKey;
  readonly b: SampleKey;
  readonly same: boolean;
  /** 0-based fold; protocol sources fix it (LFW set k), others leave it to the contiguous rule. */
  readonly fold?: number;
  /** Group label (race, gender, ...) where the source knows one; pairs without it are outside every group. */
  readonly group?: string;
}

/**
 * How a source's group labels are to be read (strategy-specs 7.7).
 * - 'benchmark': every group is a verification set of its own with genuine and impostor pairs
 *   (RFW-like): per-group accuracy, their mean, STD and SER.
 * - 'subset': the labels pick out a subset of one benchmark's pairs (the LFW rule): per-group
 *   TPR/FPR of the held-out decisions only, no accuracy-based STD/SER.
 */
export interface PairGroups {
  /** What the groups are, for reports, e.g. "race (lfw_race_dict.json, single-label identities)". */
  readonly attribute: string;
  readonly mode: 'benchmark' | 'subset';
}

/** A verification benchmark: pairs of images plus a loader for the images they name. */
export interface PairSource {
  readonly name: string;
  /** Label written into reports, e.g. "LFW View 2 (centre crop 110 px, not landmark-aligned)". */
  readonly protocol: string;
  init(): Promise<{ readonly pairs: readonly VerificationPair[]; readonly images: readonly SampleKey[]; readonly listHash: string; readonly groups?: PairGroups }>;
  /** Loads images as [N, H, W, 3] float32 RGB 0..255. */
  load(keys: readonly SampleKey[]): Promise<tf.Tensor4D>;
  dispose(): void;
}
