import type { JsonValue } from '../util/json.js';
import { Rng, type RngState } from '../util/rng.js';

/** Uniform sampling without replacement within an epoch; a fresh seeded shuffle per epoch. */
export class EpochSampler {
  private order: number[] = [];
  private pos = 0;
  private epoch = 0;
  private readonly rng: Rng;

  constructor(private readonly n: number, seed: number) {
    if (n <= 0) throw new Error('cannot sample from an empty data set');
    this.rng = new Rng(seed);
    this.reshuffle();
  }

  private reshuffle(): void {
    this.order = this.rng.shuffle(Array.from({ length: this.n }, (_, i) => i));
    this.pos = 0;
  }

  take(k: number): number[] {
    const out: number[] = [];
    while (out.length < k) {
      if (this.pos >= this.n) { this.epoch++; this.reshuffle(); }
      out.push(this.order[this.pos++]!);
    }
    return out;
  }

  state(): JsonValue {
    return { epoch: this.epoch, pos: this.pos, order: this.order, rng: [...this.rng.state()] };
  }

  restore(s: JsonValue): void {
    const o = s as { epoch: number; pos: number; order: number[]; rng: number[] };
    this.epoch = o.epoch; this.pos = o.pos; this.order = [...o.order];
    this.rng.restore(o.rng as unknown as RngState);
  }
}
