// The numbers of an ablation: per cell, mean ± std over seeds of every metric and the paired
// difference against the baseline cell. One object feeds report.md, report.html, the CSVs and
// results.json, so they cannot disagree.
import path from 'node:path';
import type { AblationCell } from './cells.js';
import type { CollectedRun, Curve, MetricDef, Section } from './results.js';
import type { AblationSpec } from './spec.js';
import { pairedDifference, seedStats, type PairedDifference, type SeedStats } from './stats.js';

export interface RunSummary {
  readonly seed: number;
  readonly name: string;
  readonly status: 'done' | 'failed' | 'missing';
  readonly error?: string;
  readonly values: Readonly<Record<string, number | null>>;
  readonly wallIncomplete: boolean;
}

export interface CellSummary {
  readonly id: string;
  readonly levels: Readonly<Record<string, string>>;
  readonly isBaseline: boolean;
  readonly runs: readonly RunSummary[];
  readonly stats: Readonly<Record<string, SeedStats>>;
  /** Against the baseline cell, paired by seed; absent for the baseline itself. */
  readonly delta?: Readonly<Record<string, PairedDifference>>;
  /** ROC averaged over seeds (vertical averaging: mean TPR at each FPR of a grid). */
  readonly roc?: Curve;
  /** Loss term → mean over seeds at each step. */
  readonly losses: Readonly<Record<string, Curve>>;
}

export interface AblationSummary {
  readonly ablation: string;
  readonly file: string;
  readonly description?: string;
  readonly base: string;
  readonly design: AblationSpec['design'];
  readonly factors: readonly { readonly name: string; readonly levels: readonly string[] }[];
  readonly seeds: readonly number[];
  readonly baseline: { readonly cell: string; readonly levels: Readonly<Record<string, string>> };
  /** How the numbers were computed, as sentences for the report. */
  readonly method: readonly string[];
  readonly metrics: readonly MetricDef[];
  readonly cells: readonly CellSummary[];
  readonly teacherAccuracy?: number;
  readonly groupAttribute?: string;
  readonly groupNote?: string;
  readonly generatedAt: string;
}

export const CI_LEVEL = 0.95;

/** Relative to the working directory when below it, else absolute. */
function displayPath(p: string): string {
  const rel = path.relative(process.cwd(), path.resolve(p));
  return rel.startsWith('..') || path.isAbsolute(rel) ? path.resolve(p) : rel;
}
const SECTIONS: readonly Section[] = ['verification', 'agreement', 'groups', 'loss', 'cost'];
const ROC_GRID = Array.from({ length: 101 }, (_, i) => i / 100);

/**
 * TPR at FPR f on the ROC's own segments (linear between its points, as ties draw them; a vertical
 * jump at f counts its top), so curves of different seeds can be averaged at common FPRs.
 */
export function tprAt(roc: Curve, f: number): number {
  let best = 0;
  for (let i = 0; i < roc.x.length; i++) {
    const x0 = roc.x[i]!, y0 = roc.y[i]!;
    if (x0 <= f + 1e-12) best = Math.max(best, y0);
    const x1 = roc.x[i + 1], y1 = roc.y[i + 1];
    if (x1 !== undefined && y1 !== undefined && x0 < f && f < x1) best = Math.max(best, y0 + ((f - x0) / (x1 - x0)) * (y1 - y0));
  }
  return best;
}

function meanRoc(rocs: readonly Curve[]): Curve | undefined {
  if (rocs.length === 0) return undefined;
  return { x: ROC_GRID, y: ROC_GRID.map((f) => rocs.reduce((a, r) => a + tprAt(r, f), 0) / rocs.length) };
}

function meanCurves(curves: readonly Curve[]): Curve {
  const sum = new Map<number, { s: number; n: number }>();
  for (const c of curves) c.x.forEach((x, i) => { const e = sum.get(x) ?? { s: 0, n: 0 }; e.s += c.y[i]!; e.n++; sum.set(x, e); });
  const xs = [...sum.keys()].sort((a, b) => a - b);
  return { x: xs, y: xs.map((x) => sum.get(x)!.s / sum.get(x)!.n) };
}

export interface RunInput {
  readonly cell: AblationCell;
  readonly seed: number;
  readonly name: string;
  readonly status: RunSummary['status'];
  readonly error?: string;
  readonly collected?: CollectedRun;
}

export function summarise(spec: AblationSpec, cells: readonly AblationCell[], runs: readonly RunInput[]): AblationSummary {
  // Metric columns: the union over runs, by section, in order of first appearance.
  const seen = new Map<string, MetricDef>();
  for (const r of runs) for (const d of r.collected?.defs ?? []) if (!seen.has(d.key)) seen.set(d.key, d);
  const metrics = SECTIONS.flatMap((s) => [...seen.values()].filter((d) => d.section === s));

  const valuesBySeed = (cellId: string, key: string) => {
    const m = new Map<number, number>();
    for (const r of runs) {
      const v = r.cell.id === cellId && r.status === 'done' ? r.collected?.values[key] : null;
      if (v !== null && v !== undefined) m.set(r.seed, v);
    }
    return m;
  };
  const baseCell = cells.find((c) => c.isBaseline)!;
  const cellSummaries = cells.map((cell): CellSummary => {
    const mine = runs.filter((r) => r.cell.id === cell.id);
    const done = mine.filter((r) => r.status === 'done' && r.collected);
    const stats = Object.fromEntries(metrics.map((d) => [d.key, seedStats([...valuesBySeed(cell.id, d.key).values()])]));
    const delta = cell.isBaseline ? undefined : Object.fromEntries(metrics.map((d) => [d.key, pairedDifference(valuesBySeed(cell.id, d.key), valuesBySeed(baseCell.id, d.key), CI_LEVEL)]));
    const terms = [...new Set(done.flatMap((r) => Object.keys(r.collected!.losses)))];
    const roc = meanRoc(done.flatMap((r) => (r.collected!.roc ? [r.collected!.roc] : [])));
    return {
      id: cell.id, levels: cell.levels, isBaseline: cell.isBaseline,
      runs: mine.map((r) => ({
        seed: r.seed, name: r.name, status: r.status, ...(r.error ? { error: r.error } : {}),
        values: r.collected?.values ?? {}, wallIncomplete: r.collected?.wallIncomplete ?? false,
      })),
      stats, ...(delta ? { delta } : {}), ...(roc ? { roc } : {}),
      losses: Object.fromEntries(terms.map((t) => [t, meanCurves(done.flatMap((r) => (r.collected!.losses[t] ? [r.collected!.losses[t]!] : [])))])),
    };
  });
  const first = runs.find((r) => r.collected)?.collected;
  const ddofNote = metrics.some((d) => d.key === 'groups_std_acc_pct') ? ' The across-group STD is a different statistic; its ddof is stated in its column.' : '';
  return {
    ablation: spec.name, file: displayPath(spec.file), ...(spec.description ? { description: spec.description } : {}),
    base: displayPath(spec.base), design: spec.design,
    factors: spec.factors.map((f) => ({ name: f.name, levels: f.levels.map((l) => l.name) })),
    seeds: spec.seeds, baseline: { cell: baseCell.id, levels: baseCell.levels },
    method: [
      `Each cell ran once per seed (${spec.seeds.join(', ')}), each run in its own process; a cell's value is the mean ± sample standard deviation (ddof 1) over its finished seeds, n = number of seeds.${ddofNote}`,
      `Δ is the paired difference against the baseline cell \`${baseCell.id}\`: d_s = x_cell,s − x_baseline,s over the seeds both finished, reported as mean d̄ with a ${100 * CI_LEVEL} % Student-t interval d̄ ± t_{0.975, n−1} · s_d / √n (s_d the sample std of d_s, n − 1 degrees of freedom); no interval with fewer than 2 pairs. Percentages differ in percentage points (pp).`,
      'Verification numbers are the student\'s, from each run\'s eval.json: accuracy is the mean 10-fold accuracy (threshold chosen on the other 9 folds); TAR@FAR uses the nearest-FPR rule (strategy-specs 7.6); the ROC plot averages TPR over seeds at each FPR.',
      'Final loss = mean of the last 10 % of logged steps. Train time = summed step time (kept across resumes); wall time = the run\'s process time measured by the sweep, summed over attempts (marked + where a killed sweep cut an attempt short); images/s = training images per second of step time.',
    ],
    metrics, cells: cellSummaries,
    ...(first?.teacherAccuracy !== undefined ? { teacherAccuracy: first.teacherAccuracy } : {}),
    ...(first?.groupAttribute ? { groupAttribute: first.groupAttribute } : {}), ...(first?.groupNote ? { groupNote: first.groupNote } : {}),
    generatedAt: new Date().toISOString(),
  };
}
