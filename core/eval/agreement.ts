// Teacher–student agreement measures, pure functions over plain arrays (no tfjs).

/**
 * Mean over images of cos(t_i, s_i) = t·s / max(‖t‖·‖s‖, 1e-8) (strategy-specs section 0).
 * Only meaningful in a shared embedding space: returns null when any pair of dimensions differs
 * (e.g. a 128-d student of a 512-d teacher). Empty input gives NaN.
 */
export function meanCosine(teacherEmb: readonly Float32Array[], studentEmb: readonly Float32Array[]): number | null {
  if (teacherEmb.length !== studentEmb.length) {
    throw new Error(`meanCosine: ${teacherEmb.length} teacher embeddings but ${studentEmb.length} student ones`);
  }
  if (teacherEmb.some((t, i) => t.length !== studentEmb[i]!.length)) return null;
  let sum = 0;
  teacherEmb.forEach((t, i) => {
    const s = studentEmb[i]!;
    let dot = 0, tt = 0, ss = 0;
    for (let j = 0; j < t.length; j++) { dot += t[j]! * s[j]!; tt += t[j]! * t[j]!; ss += s[j]! * s[j]!; }
    sum += dot / Math.max(Math.sqrt(tt) * Math.sqrt(ss), 1e-8);
  });
  return teacherEmb.length === 0 ? NaN : sum / teacherEmb.length;
}

/** 1-based ranks, ties get the average of the ranks they span (scipy.stats.rankdata 'average'). */
export function averageRanks(x: ArrayLike<number>): Float64Array {
  const n = x.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => (x[a]! < x[b]! ? -1 : x[a]! > x[b]! ? 1 : 0));
  const ranks = new Float64Array(n);
  for (let i = 0; i < n;) {
    let j = i;
    while (j + 1 < n && x[order[j + 1]!] === x[order[i]!]) j++;
    const r = (i + j) / 2 + 1; // average of 1-based positions i+1 … j+1
    for (let m = i; m <= j; m++) ranks[order[m]!] = r;
    i = j + 1;
  }
  return ranks;
}

function pearson(x: Float64Array, y: Float64Array): number {
  const n = x.length;
  let mx = 0, my = 0;
  for (let i = 0; i < n; i++) { mx += x[i]!; my += y[i]!; }
  mx /= n; my /= n;
  let sxy = 0, sxx = 0, syy = 0;
  for (let i = 0; i < n; i++) {
    const dx = x[i]! - mx, dy = y[i]! - my;
    sxy += dx * dy; sxx += dx * dx; syy += dy * dy;
  }
  return sxy / Math.sqrt(sxx * syy); // 0/0 → NaN for constant input, as scipy
}

/**
 * Spearman rank correlation: Pearson correlation of average ranks (the definition scipy.stats.spearmanr
 * uses with ties). NaN when fewer than 2 values, a NaN value, or a constant input.
 */
export function spearman(x: ArrayLike<number>, y: ArrayLike<number>): number {
  if (x.length !== y.length) throw new Error(`spearman: lengths differ (${x.length} vs ${y.length})`);
  if (x.length < 2) return NaN;
  for (let i = 0; i < x.length; i++) if (Number.isNaN(x[i]!) || Number.isNaN(y[i]!)) return NaN;
  return pearson(averageRanks(x), averageRanks(y));
}

/** Share of pairs on which two models make the same decision (e.g. held-out kfoldAccuracy predictions). */
export function decisionAgreement(predA: readonly boolean[], predB: readonly boolean[]): number {
  if (predA.length !== predB.length) throw new Error(`decisionAgreement: lengths differ (${predA.length} vs ${predB.length})`);
  if (predA.length === 0) return NaN;
  let eq = 0;
  for (let i = 0; i < predA.length; i++) if (predA[i] === predB[i]) eq++;
  return eq / predA.length;
}
