// report.md of an ablation, and the CSVs with the same numbers.
import type { MetricDef, Section } from '../ablation/results.js';
import type { AblationSummary } from '../ablation/summary.js';
import { SECTION_TITLES, cellLabel, delta, deltaHeader, doneCount, meanStd, metricsOf, wallNote } from './ablation-format.js';

const SECTIONS: readonly Section[] = ['verification', 'agreement', 'groups', 'loss', 'cost'];

const esc = (s: string) => s.replace(/\|/g, '\\|');

function table(s: AblationSummary, defs: readonly MetricDef[], kind: 'stats' | 'delta'): string[] {
  const factors = s.factors.map((f) => f.name);
  const head = [...factors, 'n', ...defs.map((d) => esc(kind === 'stats' ? d.label : deltaHeader(d)))];
  const out = [`| ${head.join(' | ')} |`, `|${head.map((_, i) => (i < factors.length ? '---' : '--:')).join('|')}|`];
  for (const c of s.cells) {
    if (kind === 'delta' && c.isBaseline) continue;
    const levels = factors.map((f) => (c.isBaseline ? `**${c.levels[f]}**` : c.levels[f]!));
    if (c.isBaseline) levels[levels.length - 1] += ' (baseline)';
    const n = kind === 'stats' ? String(doneCount(c)) : String(Math.max(0, ...defs.map((d) => c.delta?.[d.key]?.n ?? 0)));
    const cells = defs.map((d) => (kind === 'stats' ? meanStd(c.stats[d.key], d) + wallNote(c, d.key) : delta(c.delta?.[d.key], d)));
    out.push(`| ${[...levels, n, ...cells].map(esc).join(' | ')} |`);
  }
  return out;
}

export function renderAblationMarkdown(s: AblationSummary): string {
  const runs = s.cells.flatMap((c) => c.runs);
  const failed = runs.filter((r) => r.status === 'failed');
  const out: string[] = [
    `# Ablation \`${s.ablation}\``, '',
    ...(s.description ? [s.description, ''] : []),
    `Ablation file: \`${s.file}\` · base recipe: \`${s.base}\` · design: ${s.design} · factors: ${s.factors.map((f) => `${f.name} (${f.levels.join(', ')})`).join('; ')} · seeds: ${s.seeds.join(', ')} · baseline: \`${s.baseline.cell}\``,
    '',
    `${s.cells.length} cells × ${s.seeds.length} seeds = ${runs.length} runs: ${runs.filter((r) => r.status === 'done').length} finished, ${failed.length} failed, ${runs.filter((r) => r.status === 'missing').length} not run.` +
      (s.teacherAccuracy !== undefined ? ` Teacher accuracy on the same pairs: ${s.teacherAccuracy.toFixed(2)} %.` : ''),
    '', '**Method.** ' + s.method.join(' '), '',
  ];
  for (const sec of SECTIONS) {
    const defs = metricsOf(s, sec);
    if (defs.length === 0) continue;
    out.push(`## ${SECTION_TITLES[sec]}${sec === 'groups' && s.groupAttribute ? `: ${s.groupAttribute}` : ''}`, '');
    if (sec === 'groups' && s.groupNote) out.push(`${s.groupNote[0]!.toUpperCase()}${s.groupNote.slice(1)}.`, '');
    out.push('Mean ± std over seeds:', '', ...table(s, defs, 'stats'), '');
    if (s.cells.length > 1) out.push(`Paired difference against \`${s.baseline.cell}\`, mean [95 % CI]:`, '', ...table(s, defs, 'delta'), '');
  }
  if (failed.length > 0) {
    out.push('## Failed runs', '');
    for (const c of s.cells) for (const r of c.runs) if (r.status === 'failed') out.push(`- \`${r.name}\` (cell ${cellLabel(c)}, seed ${r.seed}): ${r.error ?? 'unknown error'} — log: \`cells/${r.name}.log\``);
    out.push('');
  }
  out.push(`Files: \`report.html\` (plots), \`results.csv\` (one row per cell), \`runs.csv\` (one row per run), \`results.json\` (everything), \`cells/<run>/\` (each run's folder). Generated ${s.generatedAt}.`, '');
  return out.join('\n');
}

function csvField(v: string | number | boolean | null | undefined): string {
  if (v === null || v === undefined || (typeof v === 'number' && !Number.isFinite(v))) return '';
  const t = String(v);
  return /[",\n]/.test(t) ? `"${t.replace(/"/g, '""')}"` : t;
}

/** One row per cell: per metric mean, std, n and the paired difference with its interval (report units). */
export function renderAblationCsv(s: AblationSummary): string {
  const factors = s.factors.map((f) => f.name);
  const head = ['cell', ...factors, 'baseline', 'runs_done', 'runs_failed',
    ...s.metrics.flatMap((d) => [`${d.key}_mean`, `${d.key}_std`, `${d.key}_n`, `${d.key}_delta`, `${d.key}_delta_lo95`, `${d.key}_delta_hi95`])];
  const rows = s.cells.map((c) => [
    c.id, ...factors.map((f) => c.levels[f]!), c.isBaseline, doneCount(c), c.runs.filter((r) => r.status === 'failed').length,
    ...s.metrics.flatMap((d) => {
      const st = c.stats[d.key], dl = c.delta?.[d.key];
      return [st?.mean, st?.std, st?.n, dl?.mean, dl?.lo, dl?.hi];
    }),
  ]);
  return [head, ...rows].map((r) => r.map(csvField).join(',')).join('\n') + '\n';
}

/** One row per run (cell × seed) with every metric: what the means were taken over. */
export function renderRunsCsv(s: AblationSummary): string {
  const factors = s.factors.map((f) => f.name);
  const head = ['run', 'cell', ...factors, 'seed', 'status', 'error', ...s.metrics.map((d) => d.key)];
  const rows = s.cells.flatMap((c) => c.runs.map((r) => [r.name, c.id, ...factors.map((f) => c.levels[f]!), r.seed, r.status, r.error, ...s.metrics.map((d) => r.values[d.key])]));
  return [head, ...rows].map((r) => r.map(csvField).join(',')).join('\n') + '\n';
}
