// Seeded RNG whose whole state is four uint32s, so a checkpoint can carry it and a resumed
// run draws exactly the numbers the uninterrupted run would have drawn. Algorithm: sfc32
// (Chris Doty-Humphrey's Small Fast Counting generator), seeded through splitmix32.

export type RngState = readonly [number, number, number, number];

function splitmix32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

export class Rng {
  private a: number; private b: number; private c: number; private d: number;

  constructor(seed: number) {
    const sm = splitmix32(seed);
    this.a = sm(); this.b = sm(); this.c = sm(); this.d = sm();
    for (let i = 0; i < 12; i++) this.nextU32();
  }

  static fromState(s: RngState): Rng {
    const r = new Rng(0);
    r.restore(s);
    return r;
  }

  nextU32(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0;
    this.d = (this.d + 1) >>> 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) >>> 0;
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0;
    this.c = (this.c + t) >>> 0;
    return t;
  }

  /** Uniform in [0, 1). */
  next(): number { return this.nextU32() / 4294967296; }

  /** Integer in [0, n). */
  int(n: number): number { return Math.floor(this.next() * n); }

  uniform(lo: number, hi: number): number { return lo + (hi - lo) * this.next(); }

  /** Standard normal (Box–Muller; uses two draws per call so the stream stays simple). */
  normal(): number {
    const u = Math.max(this.next(), 1e-12);
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** A fresh int32 seed, e.g. for tfjs initialisers. */
  seed(): number { return this.nextU32() & 0x7fffffff; }

  shuffle<T>(xs: T[]): T[] {
    for (let i = xs.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [xs[i], xs[j]] = [xs[j]!, xs[i]!];
    }
    return xs;
  }

  state(): RngState { return [this.a, this.b, this.c, this.d]; }

  restore(s: RngState): void { [this.a, this.b, this.c, this.d] = s.map((x) => x >>> 0) as [number, number, number, number]; }
}
