import type { JsonValue } from '../util/json.js';
import { Rng, type RngState } from '../util/rng.js';
import type { BatchSampler } from './batch-sampler.js';

/**
 * Identity-balanced P×K batches: P distinct identities, K images each (TFace
 * `recognition/tasks/ekd/dataset.py` `BalancedBatchSampler`). Per identity: K of its images
 * drawn without replacement when it has more than K, all of them when it has exactly K, and
 * its list repeated and cut to K when it has fewer (TFace's rule). Unlike TFace, which draws
 * identities afresh per batch, identities follow a seeded shuffle per epoch, so each appears
 * once per epoch of ⌊I/P⌋ batches (the last I mod P of a shuffle start no batch).
 */
export class PkSampler implements BatchSampler {
  private readonly byIdentity: readonly (readonly number[])[];
  private order: number[] = [];
  private pos = 0;
  private epoch = 0;
  private readonly rng: Rng;

  /** labels[i] = identity of sample i (any integers). */
  constructor(labels: ArrayLike<number>, readonly identities: number, readonly perIdentity: number, seed: number) {
    const groups = new Map<number, number[]>();
    for (let i = 0; i < labels.length; i++) {
      const l = labels[i]!;
      if (!groups.has(l)) groups.set(l, []);
      groups.get(l)!.push(i);
    }
    this.byIdentity = [...groups.keys()].sort((a, b) => a - b).map((l) => groups.get(l)!);
    if (identities < 1 || perIdentity < 1) throw new Error(`P×K sampler: identities (${identities}) and perIdentity (${perIdentity}) must be ≥ 1`);
    if (this.byIdentity.length < identities) {
      throw new Error(`P×K sampler: ${identities} identities per batch, but the data has only ${this.byIdentity.length}`);
    }
    this.rng = new Rng(seed);
    this.reshuffle();
  }

  /** P·K: the only batch size this sampler gives. */
  get batchSize(): number { return this.identities * this.perIdentity; }

  private reshuffle(): void {
    this.order = this.rng.shuffle(Array.from({ length: this.byIdentity.length }, (_, i) => i));
    this.pos = 0;
  }

  private imagesOf(members: readonly number[]): number[] {
    const k = this.perIdentity, n = members.length;
    if (n === k) return [...members];
    if (n < k) return Array.from({ length: k }, (_, j) => members[j % n]!);
    // K without replacement: the first K of a partial Fisher–Yates shuffle.
    const xs = [...members];
    for (let j = 0; j < k; j++) {
      const r = j + this.rng.int(n - j);
      [xs[j], xs[r]] = [xs[r]!, xs[j]!];
    }
    return xs.slice(0, k);
  }

  take(batchSize: number): number[] {
    if (batchSize !== this.batchSize) {
      throw new Error(`P×K sampler: batch size ${batchSize} ≠ identities × perIdentity = ${this.identities} × ${this.perIdentity} = ${this.batchSize}; set the stage's batchSize to ${this.batchSize}`);
    }
    if (this.pos + this.identities > this.order.length) { this.epoch++; this.reshuffle(); }
    const ids = this.order.slice(this.pos, this.pos + this.identities);
    this.pos += this.identities;
    return ids.flatMap((id) => this.imagesOf(this.byIdentity[id]!));
  }

  state(): JsonValue {
    return { epoch: this.epoch, pos: this.pos, order: this.order, rng: [...this.rng.state()] };
  }

  restore(s: JsonValue): void {
    const o = s as { epoch: number; pos: number; order: number[]; rng: number[] };
    if (!Array.isArray(o?.order) || o.order.length !== this.byIdentity.length) throw new Error('P×K sampler: saved state is for a different identity list');
    this.epoch = o.epoch; this.pos = o.pos; this.order = [...o.order];
    this.rng.restore(o.rng as unknown as RngState);
  }
}
