// Pair-verification metrics as pure functions over plain arrays (no tfjs), following
// /work/shared/docs/strategy-specs.md section 7:
//   7.4 10-fold accuracy      deepinsight/insightface recognition/arcface_torch/eval/verification.py
//                             (evaluate, calculate_roc, calculate_accuracy, LFold = sklearn KFold(shuffle=False))
//   7.5 VAL@FAR               same file (calculate_val, calculate_val_far), project threshold rule
//   7.6 TAR@FAR (nearest FPR) deepinsight/insightface recognition/arcface_torch/eval_ijbc.py
//   7.7 per-group metrics     Tencent/TFace recognition/test/verification_rfw.py (mean, std ddof 1, SER)
// Accuracies, VAL, FAR, TPR are fractions in [0, 1]; reports multiply by 100.

/** Per-pair distances (lower = more similar) or scores (higher = more similar). */
export type Values = Float64Array | Float32Array | readonly number[];

/** θ_j = 0.01·j, j = 0…399: numpy `arange(0, 4, 0.01)` computes start + j·step, which is j·0.01 here. */
export const ACCURACY_THRESHOLDS: readonly number[] = Object.freeze(Array.from({ length: 400 }, (_, j) => j * 0.01));
/** θ_j = 0.001·j, j = 0…3999 (`arange(0, 4, 0.001)`, calculate_val). */
export const VAL_THRESHOLDS: readonly number[] = Object.freeze(Array.from({ length: 4000 }, (_, j) => j * 0.001));
/** IJB-B/C columns of eval_ijbc.py. */
export const DEFAULT_FAR_TARGETS: readonly number[] = Object.freeze([1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1]);

// ---------------------------------------------------------------- embeddings

/** n(v) = v / max(‖v‖₂, 1e-12) (spec section 0); the norm is accumulated in float64. */
export function l2normalize(v: Float32Array): Float32Array {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i]! * v[i]!;
  const n = Math.max(Math.sqrt(s), 1e-12);
  const out = new Float32Array(v.length);
  for (let i = 0; i < v.length; i++) out[i] = v[i]! / n;
  return out;
}

/**
 * d_i = ‖n(a_i) − n(b_i)‖² (7.4 step 2; = 2 − 2cos ∈ [0, 4]). Normalised vectors are float32 like
 * insightface's numpy arrays; the sum is float64 (differs from numpy's float32 sum only far below 1e-6).
 */
export function pairDistances(embA: readonly Float32Array[], embB: readonly Float32Array[]): Float64Array {
  if (embA.length !== embB.length) throw new Error(`pairDistances: ${embA.length} first embeddings but ${embB.length} second ones`);
  const out = new Float64Array(embA.length);
  for (let i = 0; i < embA.length; i++) {
    if (embA[i]!.length !== embB[i]!.length) throw new Error(`pairDistances: pair ${i} has dims ${embA[i]!.length} and ${embB[i]!.length}`);
    const a = l2normalize(embA[i]!), b = l2normalize(embB[i]!);
    let s = 0;
    for (let j = 0; j < a.length; j++) s += (a[j]! - b[j]!) ** 2;
    out[i] = s;
  }
  return out;
}

// ---------------------------------------------------------------- folds

/** sklearn KFold(shuffle=False) sizes: ⌊n/k⌋ each, the first n mod k folds one more (7.4 step 3). */
export function foldSizes(n: number, k: number): number[] {
  if (!Number.isInteger(k) || k < 1) throw new Error(`folds must be a positive integer, got ${k}`);
  const base = Math.floor(n / k), extra = n % k;
  return Array.from({ length: k }, (_, f) => base + (f < extra ? 1 : 0));
}

/** Fold index of each of n pairs under the contiguous (unshuffled) KFold rule. */
export function contiguousFolds(n: number, k: number): Int32Array {
  const out = new Int32Array(n);
  let i = 0;
  foldSizes(n, k).forEach((size, f) => { out.fill(f, i, i + size); i += size; });
  return out;
}

function checkPairs(values: Values, same: readonly boolean[], what: string): number {
  if (values.length !== same.length) throw new Error(`${what}: ${values.length} values but ${same.length} labels`);
  return values.length;
}

function checkFolds(n: number, k: number, what: string): void {
  // sklearn KFold refuses these too: an empty held-out fold has no accuracy.
  if (!Number.isInteger(k) || k < 2) throw new Error(`${what}: folds must be an integer ≥ 2, got ${k}`);
  if (n < k) throw new Error(`${what}: ${n} pairs cannot be split into ${k} folds`);
}

/** Number of entries of ascending `sorted` that are < x (strict: prediction is d < θ). */
function countBelow(sorted: Float64Array, x: number): number {
  let lo = 0, hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! < x) lo = mid + 1; else hi = mid;
  }
  return lo;
}

/** Distances of one fold split by label, ascending; NaN distances are dropped (NaN < θ is false, as in numpy). */
interface FoldData {
  readonly nSame: number;
  readonly nDiff: number;
  readonly same: Float64Array;
  readonly diff: Float64Array;
}

function splitFolds(dist: Values, same: readonly boolean[], fold: Int32Array, k: number): FoldData[] {
  const s: number[][] = Array.from({ length: k }, () => []), d: number[][] = Array.from({ length: k }, () => []);
  const nS = new Array<number>(k).fill(0), nD = new Array<number>(k).fill(0);
  for (let i = 0; i < dist.length; i++) {
    const f = fold[i]!;
    if (same[i]) nS[f]!++; else nD[f]!++;
    if (!Number.isNaN(dist[i]!)) (same[i] ? s : d)[f]!.push(dist[i]!);
  }
  const asc = (v: number[]) => Float64Array.from(v).sort();
  return Array.from({ length: k }, (_, f) => ({ nSame: nS[f]!, nDiff: nD[f]!, same: asc(s[f]!), diff: asc(d[f]!) }));
}

/** below[f][j] = pairs of fold f (same / diff) with d < θ_j. */
function belowCounts(folds: readonly FoldData[], grid: readonly number[]): { same: Int32Array[]; diff: Int32Array[] } {
  return {
    same: folds.map((f) => Int32Array.from(grid, (t) => countBelow(f.same, t))),
    diff: folds.map((f) => Int32Array.from(grid, (t) => countBelow(f.diff, t))),
  };
}

function sumOver(rows: readonly Int32Array[], len: number): Float64Array {
  const out = new Float64Array(len);
  for (const r of rows) for (let j = 0; j < len; j++) out[j]! += r[j]!;
  return out;
}

function mean(v: readonly number[]): number {
  return v.length === 0 ? NaN : v.reduce((a, b) => a + b, 0) / v.length;
}

/** np.std with ddof: sqrt(Σ(x − x̄)² / (n − ddof)). */
function stdDev(v: readonly number[], ddof: number): number {
  if (v.length - ddof <= 0) return NaN;
  const m = mean(v);
  return Math.sqrt(v.reduce((a, x) => a + (x - m) ** 2, 0) / (v.length - ddof));
}

// ---------------------------------------------------------------- 7.4 accuracy

export interface KFoldOptions {
  /** Number of contiguous folds (default 10). */
  readonly folds?: number;
  /** Threshold grid (default θ_j = 0.01·j, j = 0…399); ties go to the first maximal entry in this order. */
  readonly thresholds?: readonly number[];
}

export interface KFoldResult {
  /** Mean of the held-out fold accuracies (fraction). */
  readonly accuracy: number;
  /** Population std (ddof 0) of the fold accuracies, as np.std in verification.py. */
  readonly std: number;
  readonly foldAccuracies: readonly number[];
  /** θ* chosen on the other folds, per fold. */
  readonly thresholds: readonly number[];
  /** Held-out decision for every pair: d < θ* of its fold. */
  readonly predictions: readonly boolean[];
}

/**
 * 10-fold verification accuracy (7.4; insightface calculate_roc): per fold, θ* = the first grid
 * threshold maximising training accuracy (np.argmax), prediction "same" iff d < θ* (strict).
 */
export function kfoldAccuracy(dist: Values, same: readonly boolean[], opts: KFoldOptions = {}): KFoldResult {
  const n = checkPairs(dist, same, 'kfoldAccuracy');
  const k = opts.folds ?? 10;
  checkFolds(n, k, 'kfoldAccuracy');
  const grid = opts.thresholds ?? ACCURACY_THRESHOLDS;
  if (grid.length === 0) throw new Error('kfoldAccuracy: empty threshold grid');
  const fold = contiguousFolds(n, k);
  const folds = splitFolds(dist, same, fold, k);
  const below = belowCounts(folds, grid);
  const totSame = sumOver(below.same, grid.length), totDiff = sumOver(below.diff, grid.length);
  const nDiffAll = folds.reduce((a, f) => a + f.nDiff, 0);

  const foldAccuracies: number[] = [], thresholds: number[] = [];
  folds.forEach((f, fi) => {
    // Training accuracy = (TP + TN) / n_train; n_train is fixed, so compare correct counts (exact).
    const nDiffTrain = nDiffAll - f.nDiff;
    let best = -1, bestJ = 0;
    for (let j = 0; j < grid.length; j++) {
      const correct = (totSame[j]! - below.same[fi]![j]!) + nDiffTrain - (totDiff[j]! - below.diff[fi]![j]!);
      if (correct > best) { best = correct; bestJ = j; }
    }
    const held = below.same[fi]![bestJ]! + f.nDiff - below.diff[fi]![bestJ]!;
    foldAccuracies.push(held / (f.nSame + f.nDiff));
    thresholds.push(grid[bestJ]!);
  });
  const predictions = Array.from(fold, (f, i) => dist[i]! < thresholds[f]!);
  return { accuracy: mean(foldAccuracies), std: stdDev(foldAccuracies, 0), foldAccuracies, thresholds, predictions };
}

/**
 * 7.7 option `thresholdMode: 'singleBest'`: one best threshold on the whole set, no cross-validation
 * (first maximal grid entry). Optimistic; only for comparison with implementations that do this.
 */
export function singleBestAccuracy(dist: Values, same: readonly boolean[], thresholds: readonly number[] = ACCURACY_THRESHOLDS): { readonly accuracy: number; readonly threshold: number } {
  const n = checkPairs(dist, same, 'singleBestAccuracy');
  if (n === 0 || thresholds.length === 0) throw new Error('singleBestAccuracy: no pairs or no thresholds');
  const [f] = splitFolds(dist, same, new Int32Array(n), 1);
  let best = -1, bestJ = 0;
  thresholds.forEach((t, j) => {
    const correct = countBelow(f!.same, t) + f!.nDiff - countBelow(f!.diff, t);
    if (correct > best) { best = correct; bestJ = j; }
  });
  return { accuracy: best / n, threshold: thresholds[bestJ]! };
}

// ---------------------------------------------------------------- 7.5 VAL@FAR

/**
 * How θ_f is read off FAR_train (7.5 project decision). 'maxThresholdAtFar' (default): the largest
 * grid θ with FAR_train(θ) ≤ target. 'interp': piecewise-linear θ(FAR) after collapsing runs of equal
 * FAR to their first threshold. The reference (scipy interp1d 'slinear' on raw runs) can differ slightly.
 */
export type ValThresholdRule = 'maxThresholdAtFar' | 'interp';

export interface ValOptions {
  /** Target FAR (default 1e-3). */
  readonly far?: number;
  readonly rule?: ValThresholdRule;
  readonly folds?: number;
  /** Threshold grid (default θ_j = 0.001·j, j = 0…3999); used in ascending order. */
  readonly thresholds?: readonly number[];
}

export interface ValResult {
  readonly target: number;
  readonly rule: ValThresholdRule;
  /** Mean VAL (TP / n_same on the held-out fold) over included folds. */
  readonly val: number;
  /** Population std (ddof 0) of VAL over included folds. */
  readonly std: number;
  /** Mean held-out FAR (FP / n_diff) over included folds. */
  readonly far: number;
  /** Per fold; NaN for excluded folds. */
  readonly foldVal: readonly number[];
  readonly foldFar: readonly number[];
  /** θ_f per fold (NaN where training has no different pairs). */
  readonly foldThresholds: readonly number[];
  /** Folds left out of the means because VAL or FAR is undefined there. */
  readonly excludedFolds: number;
  readonly warnings: readonly string[];
}

/** θ_f from FAR_train over an ascending grid; null when no grid θ can meet the target. */
function valThreshold(grid: readonly number[], farTrain: Float64Array, target: number, rule: ValThresholdRule): number | null {
  let maxFar = -Infinity;
  for (const v of farTrain) maxFar = Math.max(maxFar, v);
  if (!(maxFar >= target)) return 0; // calculate_val: FAR never reaches the target → θ = 0
  if (rule === 'maxThresholdAtFar') {
    for (let j = grid.length - 1; j >= 0; j--) if (farTrain[j]! <= target) return grid[j]!;
    return null;
  }
  // Collapse runs of equal FAR (FAR_train is non-decreasing in θ) to their first threshold.
  const fx: number[] = [], tx: number[] = [];
  for (let j = 0; j < grid.length; j++) {
    if (j === 0 || farTrain[j] !== farTrain[j - 1]) { fx.push(farTrain[j]!); tx.push(grid[j]!); }
  }
  if (target < fx[0]!) return null;
  for (let i = 0; i < fx.length; i++) {
    if (fx[i] === target) return tx[i]!;
    if (fx[i]! < target && target < fx[i + 1]!) return tx[i]! + (target - fx[i]!) * (tx[i + 1]! - tx[i]!) / (fx[i + 1]! - fx[i]!);
  }
  return null; // unreachable: target ≤ max FAR
}

/**
 * VAL@FAR (7.5; insightface calculate_val / calculate_val_far): θ_f from FAR on the training folds,
 * VAL and FAR on the held-out fold. Guards: folds whose held-out part lacks same or different pairs,
 * or whose training part lacks different pairs, give NaN, are excluded from the means and counted.
 */
export function valAtFar(dist: Values, same: readonly boolean[], opts: ValOptions = {}): ValResult {
  const n = checkPairs(dist, same, 'valAtFar');
  const k = opts.folds ?? 10, target = opts.far ?? 1e-3, rule = opts.rule ?? 'maxThresholdAtFar';
  checkFolds(n, k, 'valAtFar');
  if (!(target > 0 && target <= 1)) throw new Error(`valAtFar: target FAR must be in (0, 1], got ${target}`);
  const grid = [...(opts.thresholds ?? VAL_THRESHOLDS)].sort((a, b) => a - b);
  if (grid.length === 0) throw new Error('valAtFar: empty threshold grid');
  const folds = splitFolds(dist, same, contiguousFolds(n, k), k);
  const below = belowCounts(folds, grid);
  const totDiff = sumOver(below.diff, grid.length);
  const nDiffAll = folds.reduce((a, f) => a + f.nDiff, 0);

  const foldVal: number[] = [], foldFar: number[] = [], foldThresholds: number[] = [], warnings: string[] = [];
  folds.forEach((f, fi) => {
    const nDiffTrain = nDiffAll - f.nDiff;
    let theta = NaN;
    if (nDiffTrain > 0) {
      const farTrain = Float64Array.from(grid, (_, j) => (totDiff[j]! - below.diff[fi]![j]!) / nDiffTrain);
      const t = valThreshold(grid, farTrain, target, rule);
      if (t === null) warnings.push(`fold ${fi}: no threshold in the grid has training FAR ≤ ${target}; using θ = 0`);
      theta = t ?? 0;
    }
    foldThresholds.push(theta);
    if (f.nSame === 0 || f.nDiff === 0 || nDiffTrain === 0) {
      warnings.push(`fold ${fi}: VAL/FAR undefined (held-out n_same=${f.nSame}, n_diff=${f.nDiff}, training n_diff=${nDiffTrain}); excluded`);
      foldVal.push(NaN); foldFar.push(NaN);
      return;
    }
    foldVal.push(countBelow(f.same, theta) / f.nSame);
    foldFar.push(countBelow(f.diff, theta) / f.nDiff);
  });
  const keptVal = foldVal.filter((v) => !Number.isNaN(v)), keptFar = foldFar.filter((v) => !Number.isNaN(v));
  return {
    target, rule, val: mean(keptVal), std: stdDev(keptVal, 0), far: mean(keptFar),
    foldVal, foldFar, foldThresholds, excludedFolds: k - keptVal.length, warnings,
  };
}

// ---------------------------------------------------------------- 7.6 ROC, TAR@FAR, AUC

export interface RocCurve {
  /** Origin first, then one point per distinct score in descending order (predict same iff score ≥ threshold). */
  readonly fpr: readonly number[];
  readonly tpr: readonly number[];
  /** +Infinity for the origin. */
  readonly thresholds: readonly number[];
}

/**
 * Full ROC, no point dropping (sklearn roc_curve(drop_intermediate=False) plus the origin). Equal scores
 * form one point, so ties give diagonal steps. One class absent → that rate is NaN (0/0).
 */
export function rocCurve(scores: Values, same: readonly boolean[]): RocCurve {
  const n = checkPairs(scores, same, 'rocCurve');
  for (let i = 0; i < n; i++) if (Number.isNaN(scores[i]!)) throw new Error(`rocCurve: score of pair ${i} is NaN`);
  // Descending by score; a comparator without subtraction keeps ±Infinity scores well ordered.
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => (scores[b]! > scores[a]! ? 1 : scores[b]! < scores[a]! ? -1 : 0));
  const nPos = same.filter(Boolean).length, nNeg = n - nPos;
  const fpr = [0 / nNeg], tpr = [0 / nPos], thresholds = [Infinity];
  let tp = 0, fp = 0;
  for (let r = 0; r < n; r++) {
    const i = order[r]!;
    if (same[i]) tp++; else fp++;
    if (r === n - 1 || scores[order[r + 1]!] !== scores[i]) {
      fpr.push(fp / nNeg); tpr.push(tp / nPos); thresholds.push(scores[i]!);
    }
  }
  return { fpr, tpr, thresholds };
}

export interface TarAtFarResult {
  /** TPR (fraction) at each target, keyed by String(target). */
  readonly tpr: Readonly<Record<string, number>>;
  /** FPR of the ROC point actually used. */
  readonly fpr: Readonly<Record<string, number>>;
  /** Score threshold of that point (+Infinity for the origin). */
  readonly threshold: Readonly<Record<string, number>>;
}

/**
 * TAR@FAR by the nearest-FPR rule (7.6; eval_ijbc.py): the ROC point with minimal |FPR − target|,
 * ties → higher TPR. Implemented like eval_ijbc.py (np.flipud of the ROC, then the first minimum), so
 * among equal TPR the higher FPR is reported. Not interpolation, not "best TPR with FPR ≤ target".
 */
export function tarAtFar(scores: Values, same: readonly boolean[], targets: readonly number[] = DEFAULT_FAR_TARGETS): TarAtFarResult {
  const roc = rocCurve(scores, same);
  const tpr: Record<string, number> = {}, fpr: Record<string, number> = {}, threshold: Record<string, number> = {};
  for (const t of targets) {
    let best = -1, bestGap = Infinity;
    for (let p = roc.fpr.length - 1; p >= 0; p--) {
      const gap = Math.abs(roc.fpr[p]! - t);
      if (gap < bestGap) { bestGap = gap; best = p; }
    }
    const key = String(t);
    // best < 0 only when the FPRs are NaN (no impostor pairs).
    tpr[key] = best < 0 ? NaN : roc.tpr[best]!;
    fpr[key] = best < 0 ? NaN : roc.fpr[best]!;
    threshold[key] = best < 0 ? NaN : roc.thresholds[best]!;
  }
  return { tpr, fpr, threshold };
}

/** ROC AUC by the trapezoid rule over the full ROC (ties count ½, as the Mann–Whitney U statistic). */
export function rocAuc(scores: Values, same: readonly boolean[]): number {
  const { fpr, tpr } = rocCurve(scores, same);
  let a = 0;
  for (let i = 1; i < fpr.length; i++) a += (fpr[i]! - fpr[i - 1]!) * (tpr[i]! + tpr[i - 1]!) / 2;
  return a;
}

// ---------------------------------------------------------------- 7.7 per-group metrics

export interface GroupMetricsOptions {
  /** ddof of the across-group std: 1 (TFace, project default) or 0. */
  readonly ddof?: 0 | 1;
}

export interface GroupMetrics {
  readonly groups: readonly string[];
  /** Per-group accuracy and error (1 − accuracy), fractions. */
  readonly accuracies: Readonly<Record<string, number>>;
  readonly errors: Readonly<Record<string, number>>;
  readonly mean: number;
  /** null with fewer than 2 groups (undefined, 7.7 guard). */
  readonly std: number | null;
  readonly ddof: 0 | 1;
  /** max Err / min Err; null when min Err = 0 (SER = +∞). */
  readonly ser: number | null;
  readonly serInfinite: boolean;
  readonly stdUndefined: boolean;
  readonly warnings: readonly string[];
}

/**
 * RFW-style fairness summary (7.7; TFace verification_rfw.py): mean and std of per-group accuracy,
 * SER = max_g Err_g / min_g Err_g. Accuracies are fractions (kfoldAccuracy's unit); SER is unit-free.
 */
export function groupMetrics(accuracy: Readonly<Record<string, number>>, opts: GroupMetricsOptions = {}): GroupMetrics {
  const ddof = opts.ddof ?? 1;
  const groups = Object.keys(accuracy);
  if (groups.length === 0) throw new Error('groupMetrics: no groups');
  for (const g of groups) {
    const a = accuracy[g]!;
    // Catches percentages passed where fractions are expected.
    if (!(a >= 0 && a <= 1)) throw new Error(`groupMetrics: accuracy of group "${g}" must be a fraction in [0, 1], got ${a}`);
  }
  const accs = groups.map((g) => accuracy[g]!);
  const errs = accs.map((a) => 1 - a);
  const warnings: string[] = [];
  const stdUndefined = groups.length < 2;
  if (stdUndefined) warnings.push(`std undefined with ${groups.length} group`);
  const minErr = Math.min(...errs), maxErr = Math.max(...errs);
  const serInfinite = minErr === 0;
  if (serInfinite) warnings.push(`SER = +∞: group "${groups[errs.indexOf(0)]}" has zero error; reported as null`);
  return {
    groups,
    accuracies: Object.fromEntries(groups.map((g, i) => [g, accs[i]!])),
    errors: Object.fromEntries(groups.map((g, i) => [g, errs[i]!])),
    mean: mean(accs),
    std: stdUndefined ? null : stdDev(accs, ddof),
    ddof,
    ser: serInfinite ? null : maxErr / minErr,
    serInfinite, stdUndefined, warnings,
  };
}

export interface GroupBreakdownRow {
  readonly group: string;
  readonly pairs: number;
  readonly genuine: number;
  readonly impostor: number;
  readonly truePositives: number;
  readonly falsePositives: number;
  /** TP / genuine; null without genuine pairs. */
  readonly tpr: number | null;
  /** FP / impostor; null without impostor pairs. */
  readonly fpr: number | null;
}

/** The single label of an identity, or undefined when unlabelled or multi-labelled ("a,b"). */
function singleLabel(labels: Readonly<Record<string, string>>, name: string): string | undefined {
  const raw = Object.hasOwn(labels, name) ? labels[name] : undefined;
  if (raw === undefined) return undefined;
  const parts = raw.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  return parts.length === 1 ? parts[0] : undefined;
}

/** The LFW rule (7.7): the group g when both identities carry exactly the single label g, else undefined. */
export function labelledPairGroup(labels: Readonly<Record<string, string>>, nameA: string, nameB: string): string | undefined {
  const g = singleLabel(labels, nameA);
  return g !== undefined && singleLabel(labels, nameB) === g ? g : undefined;
}

/**
 * Per-group counts and held-out TPR/FPR of pairs that carry a group (undefined = in no group).
 * Rows are ordered by pair count, largest first.
 */
export function groupBreakdown(groups: readonly (string | undefined)[], same: readonly boolean[], predictions: readonly boolean[]): readonly GroupBreakdownRow[] {
  if (groups.length !== predictions.length || same.length !== predictions.length) {
    throw new Error(`groupBreakdown: ${groups.length} groups, ${same.length} labels but ${predictions.length} predictions`);
  }
  const acc = new Map<string, { genuine: number; impostor: number; tp: number; fp: number }>();
  groups.forEach((g, i) => {
    if (g === undefined) return;
    const r = acc.get(g) ?? { genuine: 0, impostor: 0, tp: 0, fp: 0 };
    if (same[i]) { r.genuine++; if (predictions[i]) r.tp++; } else { r.impostor++; if (predictions[i]) r.fp++; }
    acc.set(g, r);
  });
  return [...acc.entries()]
    .map(([group, r]) => ({
      group, pairs: r.genuine + r.impostor, genuine: r.genuine, impostor: r.impostor,
      truePositives: r.tp, falsePositives: r.fp,
      tpr: r.genuine > 0 ? r.tp / r.genuine : null, fpr: r.impostor > 0 ? r.fp / r.impostor : null,
    }))
    .sort((x, y) => y.pairs - x.pairs || (x.group < y.group ? -1 : 1));
}

/**
 * LFW per-group breakdown (7.7, project rule): a pair belongs to group g only if both identities carry
 * exactly the single label g; other pairs are excluded. Uses the held-out predictions of the standard
 * 10-fold run (θ* of each pair's fold). Rows are ordered by pair count, largest first. A rough indicator:
 * no accuracy-based STD/SER is derived from it.
 */
export function labelledGroupBreakdown(
  pairs: readonly { readonly a: { readonly name: string }; readonly b: { readonly name: string }; readonly same: boolean }[],
  labels: Readonly<Record<string, string>>,
  predictions: readonly boolean[],
): readonly GroupBreakdownRow[] {
  if (pairs.length !== predictions.length) throw new Error(`labelledGroupBreakdown: ${pairs.length} pairs but ${predictions.length} predictions`);
  return groupBreakdown(pairs.map((p) => labelledPairGroup(labels, p.a.name, p.b.name)), pairs.map((p) => p.same), predictions);
}
