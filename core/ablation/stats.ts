// Statistics over seeds: mean, sample standard deviation, and the paired difference against a
// baseline with a Student-t confidence interval. Pure functions (no tfjs).

export function mean(xs: readonly number[]): number {
  return xs.length === 0 ? NaN : xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** Sample standard deviation (ddof 1, numpy `std(ddof=1)`); NaN for fewer than 2 values. */
export function sampleStd(xs: readonly number[]): number {
  if (xs.length < 2) return NaN;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1));
}

/**
 * ln Γ(x) for x > 0: shift up with Γ(x) = Γ(x + k) / (x (x+1) … (x+k−1)) until x ≥ 15, then the
 * Stirling series to the x⁻⁷ term (truncation error below 1e-14 there).
 */
function lnGamma(x: number): number {
  let shift = 0;
  while (x < 15) { shift += Math.log(x); x += 1; }
  const x2 = x * x;
  const series = 1 / (12 * x) - 1 / (360 * x * x2) + 1 / (1260 * x * x2 * x2) - 1 / (1680 * x * x2 * x2 * x2);
  return (x - 0.5) * Math.log(x) - x + 0.5 * Math.log(2 * Math.PI) + series - shift;
}

/** Continued fraction of the incomplete beta function (modified Lentz). */
function betaContinuedFraction(x: number, a: number, b: number): number {
  const tiny = 1e-300;
  let c = 1, d = 1 - ((a + b) * x) / (a + 1);
  if (Math.abs(d) < tiny) d = tiny;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= 500; m++) {
    const m2 = 2 * m;
    let aa = (m * (b - m) * x) / ((a + m2 - 1) * (a + m2));
    d = 1 + aa * d; if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c; if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d; h *= d * c;
    aa = (-(a + m) * (a + b + m) * x) / ((a + m2) * (a + m2 + 1));
    d = 1 + aa * d; if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c; if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < 1e-15) break;
  }
  return h;
}

/** Regularised incomplete beta I_x(a, b). */
export function regularizedBeta(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const front = Math.exp(lnGamma(a + b) - lnGamma(a) - lnGamma(b) + a * Math.log(x) + b * Math.log(1 - x));
  // The fraction converges fast for x < (a+1)/(a+b+2); use the symmetry I_x(a,b) = 1 − I_{1−x}(b,a) otherwise.
  return x < (a + 1) / (a + b + 2) ? (front * betaContinuedFraction(x, a, b)) / a : 1 - (front * betaContinuedFraction(1 - x, b, a)) / b;
}

/** Student-t CDF with `df` degrees of freedom. */
export function studentTCdf(t: number, df: number): number {
  const tail = 0.5 * regularizedBeta(df / (df + t * t), df / 2, 0.5);
  return t >= 0 ? 1 - tail : tail;
}

/** Student-t quantile: the t with CDF(t) = p (bisection on the CDF; closed forms for 1 and 2 dof). */
export function studentTQuantile(p: number, df: number): number {
  if (!(p > 0 && p < 1) || !(df > 0)) return NaN;
  if (df === 1) return Math.tan(Math.PI * (p - 0.5));
  if (df === 2) return (2 * p - 1) / Math.sqrt(2 * p * (1 - p));
  if (p < 0.5) return -studentTQuantile(1 - p, df);
  let lo = 0, hi = 1;
  while (studentTCdf(hi, df) < p) hi *= 2;
  for (let i = 0; i < 200 && hi - lo > 1e-13 * Math.max(1, hi); i++) {
    const mid = (lo + hi) / 2;
    if (studentTCdf(mid, df) < p) lo = mid; else hi = mid;
  }
  return (lo + hi) / 2;
}

export interface SeedStats {
  readonly n: number;
  readonly mean: number | null;
  /** Sample std (ddof 1); null with fewer than 2 seeds. */
  readonly std: number | null;
}

export function seedStats(xs: readonly number[]): SeedStats {
  return { n: xs.length, mean: xs.length ? mean(xs) : null, std: xs.length >= 2 ? sampleStd(xs) : null };
}

export interface PairedDifference {
  /** Seeds present (with a finite value) in both the cell and the baseline. */
  readonly seeds: readonly number[];
  readonly n: number;
  /** Mean of d_s = x_cell,s − x_baseline,s. */
  readonly mean: number | null;
  /** Sample std of d_s (ddof 1). */
  readonly std: number | null;
  /** d̄ ± t_{(1+level)/2, n−1} · s_d / √n; null with fewer than 2 pairs. */
  readonly lo: number | null;
  readonly hi: number | null;
  readonly level: number;
}

/** The paired difference of a cell against the baseline over the seeds both have (paired t interval). */
export function pairedDifference(cell: ReadonlyMap<number, number>, baseline: ReadonlyMap<number, number>, level = 0.95): PairedDifference {
  const seeds = [...cell.keys()].filter((s) => baseline.has(s)).sort((a, b) => a - b);
  const d = seeds.map((s) => cell.get(s)! - baseline.get(s)!);
  const n = d.length;
  if (n === 0) return { seeds, n, mean: null, std: null, lo: null, hi: null, level };
  const m = mean(d);
  if (n < 2) return { seeds, n, mean: m, std: null, lo: null, hi: null, level };
  const sd = sampleStd(d);
  const half = studentTQuantile((1 + level) / 2, n - 1) * sd / Math.sqrt(n);
  return { seeds, n, mean: m, std: sd, lo: m - half, hi: m + half, level };
}
