import { existsSync, readFileSync } from 'node:fs';
import type { CurvePoint } from '../interfaces/events.js';
import { linePlot, PALETTE, type Series } from './svg.js';

/** A learning-curve point as metrics.jsonl holds it. */
export interface CurveRow extends CurvePoint {
  readonly stage: string;
  readonly step: number;
}

/** The `event: "eval"` rows of a metrics.jsonl, in file order, a point repeated after a resume kept once (the last). */
export function curveFromMetrics(file: string): CurveRow[] {
  if (!existsSync(file)) return [];
  const rows = readFileSync(file, 'utf8').split('\n').filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as CurveRow & { event?: string }).filter((r) => r.event === 'eval');
  const byKey = new Map<string, CurveRow>();
  for (const { event: _e, ...r } of rows) { const k = `${r.stage}|${r.step}|${r.model}`; byKey.delete(k); byKey.set(k, r); }
  return [...byKey.values()];
}

// Values from metrics.jsonl: a NaN (an AUC without impostor pairs, a TAR with no genuine pair) was written as null.
const num = (x: number | null | undefined, digits: number, scale = 1) => (typeof x === 'number' && Number.isFinite(x) ? (scale * x).toFixed(digits) : 'n/a');
const pct = (x: number | null | undefined) => num(x, 2, 100);

/** The curve as a markdown table: one row per student point, the teacher's accuracy in the heading. */
export function learningCurveMarkdown(rows: readonly CurveRow[]): string[] {
  const students = rows.filter((r) => r.model === 'student');
  if (students.length === 0) return [];
  const fars = Object.keys(students[0]!.tarAtFar);
  const out = ['## Learning curve', '', '![learning curve](learning-curve.svg)', ''];
  for (const t of rows.filter((r) => r.model === 'teacher')) out.push(`Teacher (stage ${t.stage}): ${pct(t.accuracy)} ± ${pct(t.std)} %, ${fars.map((f) => `TAR@FAR=${f} ${pct(t.tarAtFar[f])} %`).join(', ')}, AUC ${num(t.auc, 4)}.`, '');
  out.push(`| stage | step | images seen | training time (min) | accuracy (%) | ${fars.map((f) => `TAR@FAR=${f} (%)`).join(' | ')} | AUC | eval time (s) |`);
  out.push(`|---|---|---|---|---|${fars.map(() => '---').join('|')}|---|---|`);
  for (const r of students) {
    out.push(`| ${r.stage} | ${r.step} | ${r.imagesSeen.toLocaleString('en-US')} | ${(r.elapsedSec / 60).toFixed(1)} | ${pct(r.accuracy)} ± ${pct(r.std)} | ${fars.map((f) => pct(r.tarAtFar[f])).join(' | ')} | ${num(r.auc, 4)} | ${num(r.evalSec, 0)} |`);
  }
  out.push('');
  return out;
}

/**
 * Accuracy against images seen (top) and against training time (bottom), one line per stage,
 * each stage's teacher dashed across it. One standalone SVG file (two plots stacked).
 */
export function learningCurveSvg(rows: readonly CurveRow[], title: string): string | undefined {
  const students = rows.filter((r) => r.model === 'student');
  if (students.length === 0) return undefined;
  const stages = [...new Set(students.map((r) => r.stage))];
  const plot = (x: (r: CurveRow) => number, xLabel: string, what: string) => {
    const series: Series[] = [];
    stages.forEach((stage, i) => {
      const pts = students.filter((r) => r.stage === stage);
      const color = PALETTE[(2 * i) % PALETTE.length]!;
      series.push({ name: stages.length > 1 ? `student (${stage})` : 'student', color, x: pts.map(x), y: pts.map((r) => 100 * r.accuracy) });
      const t = rows.find((r) => r.model === 'teacher' && r.stage === stage);
      const xs = pts.map(x);
      if (t) series.push({ name: `teacher ${pct(t.accuracy)} %`, color: PALETTE[(2 * i + 1) % PALETTE.length]!, dashed: true, x: [Math.min(...xs), Math.max(...xs)], y: [100 * t.accuracy, 100 * t.accuracy] });
    });
    return linePlot({ title: `${title}: accuracy against ${what}`, xLabel, yLabel: 'accuracy (%)', kind: `learning-curve-${what.replace(/\W+/g, '-')}` }, series);
  };
  const top = plot((r) => r.imagesSeen, 'images seen', 'images seen');
  const bottom = plot((r) => r.elapsedSec / 60, 'training time (min)', 'training time');
  const size = /viewBox="0 0 (\d+) (\d+)"/.exec(top)!;
  const [w, h] = [Number(size[1]), Number(size[2])];
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${2 * h}" viewBox="0 0 ${w} ${2 * h}">${top.replace('<svg ', '<svg x="0" y="0" ')}${bottom.replace('<svg ', `<svg x="0" y="${h}" `)}</svg>`;
}
