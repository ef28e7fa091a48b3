// How ablation numbers are written: shared by the Markdown, HTML and CSV renderers.
import type { MetricDef, Section } from '../ablation/results.js';
import type { PairedDifference, SeedStats } from '../ablation/stats.js';
import type { AblationSummary, CellSummary } from '../ablation/summary.js';

export const SECTION_TITLES: Readonly<Record<Section, string>> = {
  verification: 'Verification', agreement: 'Teacher–student agreement', groups: 'Per-group (fairness)', loss: 'Training loss', cost: 'Cost',
};

const MINUS = '−';

export function num(x: number | null | undefined, digits: number): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return '–';
  if (digits === 0) return Math.round(x).toLocaleString('en-US');
  return x.toFixed(digits).replace(/^-/, MINUS);
}

function signed(x: number, digits: number): string {
  const s = num(Math.abs(x), digits);
  return x > 0 ? `+${s}` : x < 0 ? `${MINUS}${s}` : s;
}

/** `83.33 ± 2.41`; one seed: `83.33`; none: `–`. */
export function meanStd(s: SeedStats | undefined, d: MetricDef): string {
  if (!s || s.mean === null) return '–';
  return s.std === null ? num(s.mean, d.digits) : `${num(s.mean, d.digits)} ± ${num(s.std, d.digits)}`;
}

/** `+1.23 [−0.50, +2.96]`; one pair: `+1.23 (n = 1)`. */
export function delta(p: PairedDifference | undefined, d: MetricDef): string {
  if (!p || p.mean === null) return '–';
  const digits = d.digits;
  return p.lo === null || p.hi === null ? `${signed(p.mean, digits)} (n = ${p.n})` : `${signed(p.mean, digits)} [${signed(p.lo, digits)}, ${signed(p.hi, digits)}]`;
}

/** Whether the interval excludes 0 in the metric's better direction (for highlighting). */
export function verdict(p: PairedDifference | undefined, d: MetricDef): 'better' | 'worse' | 'unclear' {
  if (!p || p.lo === null || p.hi === null || d.better === 'none') return 'unclear';
  const up = p.lo > 0, down = p.hi < 0;
  if (!up && !down) return 'unclear';
  return (up && d.better === 'higher') || (down && d.better === 'lower') ? 'better' : 'worse';
}

export function metricsOf(s: AblationSummary, section: Section): readonly MetricDef[] {
  return s.metrics.filter((m) => m.section === section);
}

export function cellLabel(c: CellSummary): string {
  return Object.values(c.levels).join(' · ');
}

/** Wall time cells carry "+" when an attempt's time is missing (cut by a killed sweep). */
export function wallNote(c: CellSummary, key: string): string {
  return key === 'wall_s' && c.runs.some((r) => r.wallIncomplete) ? '+' : '';
}

export function doneCount(c: CellSummary): number {
  return c.runs.filter((r) => r.status === 'done').length;
}

export function deltaHeader(d: MetricDef): string {
  return d.deltaUnit ? `Δ ${d.label.replace(/ \((%|s)(, [^)]*)?\)$/, '')} (${d.deltaUnit})` : `Δ ${d.label}`;
}
