import type { VerificationPair } from './pair-source.js';

/** An evaluation metric over pair distances (squared L2 of unit embeddings). */
export interface Metric {
  readonly name: string;
  compute(pairs: readonly VerificationPair[], dist: Float64Array): Readonly<Record<string, unknown>>;
}
