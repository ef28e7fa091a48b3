// Genuine / impostor verification pairs over an identity-labelled image list. Pure index maths,
// no I/O, so the counts can be checked by hand.
import { Rng } from '../../core/index.js';

export interface IndexPair {
  readonly a: number;
  readonly b: number;
  readonly same: boolean;
}

/** Separate streams, so a change of the genuine cap leaves the impostor draw alone. */
const GENUINE_STREAM = 0x6e756967;
const IMPOSTOR_STREAM = 0x736f706d;

/**
 * All pairs (i < j) within each identity, identities in the given order, pairs in lexicographic
 * order; with `cap`, a seeded choice of `cap` of them per identity (kept in lexicographic order).
 * `groups[g]` lists the image indices of identity g.
 */
export function genuinePairs(groups: readonly (readonly number[])[], seed: number, cap?: number): IndexPair[] {
  const rng = new Rng((seed ^ GENUINE_STREAM) >>> 0);
  const out: IndexPair[] = [];
  for (const g of groups) {
    const all: IndexPair[] = [];
    for (let i = 0; i < g.length; i++) for (let j = i + 1; j < g.length; j++) all.push({ a: g[i]!, b: g[j]!, same: true });
    if (cap === undefined || all.length <= cap) { out.push(...all); continue; }
    // Partial Fisher–Yates: the first `cap` slots become a uniform sample without replacement.
    const idx = all.map((_, i) => i);
    for (let i = 0; i < cap; i++) { const j = i + rng.int(idx.length - i); [idx[i], idx[j]] = [idx[j]!, idx[i]!]; }
    out.push(...idx.slice(0, cap).sort((x, y) => x - y).map((i) => all[i]!));
  }
  return out;
}

/** Number of unordered pairs of images with different identities: (N² − Σ n_g²) / 2. */
export function impostorSpace(groups: readonly (readonly number[])[]): number {
  const n = groups.reduce((s, g) => s + g.length, 0);
  return (n * n - groups.reduce((s, g) => s + g.length * g.length, 0)) / 2;
}

/**
 * `count` distinct impostor pairs, uniform over all unordered cross-identity image pairs, stored
 * with a < b. Rejection sampling while the space is at least twice the count, else a partial
 * shuffle of the enumerated space (so a near-complete draw does not spin).
 */
export function impostorPairs(groups: readonly (readonly number[])[], count: number, seed: number): IndexPair[] {
  const space = impostorSpace(groups);
  if (count > space) throw new Error(`${count} impostor pairs requested but only ${space} distinct ones exist`);
  const rng = new Rng((seed ^ IMPOSTOR_STREAM) >>> 0);
  const images: number[] = [], identity = new Map<number, number>();
  groups.forEach((g, gi) => g.forEach((i) => { images.push(i); identity.set(i, gi); }));
  const out: IndexPair[] = [];
  if (2 * count <= space) {
    const seen = new Set<string>();
    while (out.length < count) {
      const x = images[rng.int(images.length)]!, y = images[rng.int(images.length)]!;
      if (identity.get(x) === identity.get(y)) continue;
      const [a, b] = x < y ? [x, y] : [y, x];
      const k = `${a},${b}`;
      if (seen.has(k)) continue;
      seen.add(k);
      out.push({ a, b, same: false });
    }
    return out;
  }
  const all: IndexPair[] = [];
  for (let p = 0; p < images.length; p++) {
    for (let q = p + 1; q < images.length; q++) {
      const x = images[p]!, y = images[q]!;
      if (identity.get(x) !== identity.get(y)) all.push({ a: Math.min(x, y), b: Math.max(x, y), same: false });
    }
  }
  for (let i = 0; i < count; i++) { const j = i + rng.int(all.length - i); [all[i], all[j]] = [all[j]!, all[i]!]; }
  return all.slice(0, count);
}

/**
 * Spreads genuine pairs evenly among impostors (position k is genuine iff ⌊(k+1)G/n⌋ > ⌊kG/n⌋),
 * so every contiguous fold of the 10-fold rule (strategy-specs 7.4) holds both kinds.
 */
export function interleave<T>(genuine: readonly T[], impostor: readonly T[]): T[] {
  const g = genuine.length, n = g + impostor.length;
  const out: T[] = [];
  let gi = 0, ii = 0;
  for (let k = 0; k < n; k++) {
    if (Math.floor(((k + 1) * g) / n) > Math.floor((k * g) / n)) out.push(genuine[gi++]!);
    else out.push(impostor[ii++]!);
  }
  return out;
}
