// Per-group (fairness) evaluation of one model on a pair set whose pairs carry group labels
// (strategy-specs 7.7). Pure functions over plain arrays.
import type { PairGroups } from '../interfaces/pair-source.js';
import { groupBreakdown, groupMetrics, kfoldAccuracy, singleBestAccuracy, type GroupBreakdownRow, type Values } from './verification.js';

export interface FairnessSettings {
  readonly stdDdof: 0 | 1;
  readonly thresholdMode: 'kfold' | 'singleBest';
}

export const DEFAULT_FAIRNESS: FairnessSettings = { stdDdof: 1, thresholdMode: 'kfold' };

/** Accuracy-based group summary (7.7 steps 1–4); only for 'benchmark' groups. */
export interface GroupAccuracySummary {
  readonly thresholdMode: FairnessSettings['thresholdMode'];
  /** Per-group accuracy (fraction); groups too small for the folds are left out and named in warnings. */
  readonly accuracies: Readonly<Record<string, number>>;
  readonly mean: number;
  /** null with fewer than 2 groups. */
  readonly std: number | null;
  readonly ddof: 0 | 1;
  /** max Err / min Err; null when a group has zero error (SER = +∞, serInfinite) or fewer than 1 group. */
  readonly ser: number | null;
  readonly serInfinite: boolean;
  readonly warnings: readonly string[];
}

export interface GroupEvaluation {
  readonly attribute: string;
  readonly mode: PairGroups['mode'];
  /** Per group: pair counts and TPR/FPR of the held-out decisions of the overall 10-fold run. */
  readonly breakdown: readonly GroupBreakdownRow[];
  readonly accuracy?: GroupAccuracySummary;
}

/**
 * Per-group metrics. `predictions` are the overall run's held-out decisions (for the breakdown);
 * for 'benchmark' groups each group is also scored on its own: 10-fold accuracy on its pairs in
 * source order (or one best threshold, `thresholdMode: 'singleBest'`), then mean, STD (ddof as set)
 * and SER over groups.
 */
export function evaluateGroups(
  meta: PairGroups, groups: readonly (string | undefined)[], dist: Values, same: readonly boolean[],
  predictions: readonly boolean[], s: FairnessSettings = DEFAULT_FAIRNESS,
): GroupEvaluation {
  const breakdown = groupBreakdown(groups, same, predictions);
  if (meta.mode !== 'benchmark' || breakdown.length === 0) return { attribute: meta.attribute, mode: meta.mode, breakdown };
  const warnings: string[] = [];
  const accuracies: Record<string, number> = {};
  for (const row of breakdown) {
    const idx = groups.flatMap((g, i) => (g === row.group ? [i] : []));
    const d = idx.map((i) => dist[i]!), y = idx.map((i) => same[i]!);
    if (s.thresholdMode === 'singleBest') { accuracies[row.group] = singleBestAccuracy(d, y).accuracy; continue; }
    if (idx.length < 10) { warnings.push(`group "${row.group}": ${idx.length} pairs cannot be split into 10 folds; left out`); continue; }
    accuracies[row.group] = kfoldAccuracy(d, y).accuracy;
  }
  if (Object.keys(accuracies).length === 0) return { attribute: meta.attribute, mode: meta.mode, breakdown };
  const m = groupMetrics(accuracies, { ddof: s.stdDdof });
  return {
    attribute: meta.attribute, mode: meta.mode, breakdown,
    accuracy: {
      thresholdMode: s.thresholdMode, accuracies: m.accuracies, mean: m.mean, std: m.std, ddof: m.ddof,
      ser: m.ser, serInfinite: m.serInfinite, warnings: [...warnings, ...m.warnings],
    },
  };
}
