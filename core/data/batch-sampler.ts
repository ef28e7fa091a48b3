import type { JsonValue } from '../util/json.js';

/** Picks the sample indices of each batch; seeded, and restorable so a resumed run draws the same batches. */
export interface BatchSampler {
  take(batchSize: number): number[];
  state(): JsonValue;
  restore(state: JsonValue): void;
}
