// report.html of an ablation: the tables of report.md plus inline SVG plots (ROC per cell,
// loss curves per term, accuracy against cost). One file, no scripts, no external assets.
import type { MetricDef, Section } from '../ablation/results.js';
import type { AblationSummary, CellSummary } from '../ablation/summary.js';
import { SECTION_TITLES, cellLabel, delta, deltaHeader, doneCount, meanStd, metricsOf, verdict, wallNote } from './ablation-format.js';
import { PALETTE, escapeXml as esc, linePlot, scatterPlot } from './svg.js';

const SECTIONS: readonly Section[] = ['verification', 'agreement', 'groups', 'loss', 'cost'];

const CSS = `
body { font-family: system-ui, sans-serif; margin: 24px; color: #222; max-width: 1400px; }
h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 28px; } h3 { font-size: 15px; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; white-space: nowrap; }
th { background: #f3f3f3; } td.level { text-align: left; } tr.baseline td { font-weight: bold; background: #fafaf0; }
td.better { background: #e3f4e3; } td.worse { background: #f8e1e1; }
.swatch { display: inline-block; width: 10px; height: 10px; margin-right: 6px; border-radius: 2px; }
.plots { display: flex; flex-wrap: wrap; gap: 12px; } .plots svg { border: 1px solid #ddd; background: #fff; }
p.method { font-size: 13px; max-width: 1000px; } .failed { color: #a00; }
`;

function colorOf(s: AblationSummary, c: CellSummary): string {
  return PALETTE[s.cells.indexOf(c) % PALETTE.length]!;
}

function table(s: AblationSummary, defs: readonly MetricDef[], kind: 'stats' | 'delta'): string {
  const factors = s.factors.map((f) => f.name);
  const head = [...factors, 'n', ...defs.map((d) => (kind === 'stats' ? d.label : deltaHeader(d)))];
  const rows = s.cells.filter((c) => kind === 'stats' || !c.isBaseline).map((c) => {
    const lv = factors.map((f, i) => `<td class="level">${i === 0 ? `<span class="swatch" style="background:${colorOf(s, c)}"></span>` : ''}${esc(c.levels[f]!)}${i === factors.length - 1 && c.isBaseline ? ' (baseline)' : ''}</td>`).join('');
    const n = kind === 'stats' ? doneCount(c) : Math.max(0, ...defs.map((d) => c.delta?.[d.key]?.n ?? 0));
    const vals = defs.map((d) => {
      if (kind === 'stats') return `<td>${esc(meanStd(c.stats[d.key], d) + wallNote(c, d.key))}</td>`;
      const p = c.delta?.[d.key];
      const v = verdict(p, d);
      return `<td${v === 'unclear' ? '' : ` class="${v}"`}>${esc(delta(p, d))}</td>`;
    }).join('');
    return `<tr${c.isBaseline ? ' class="baseline"' : ''} data-cell="${esc(c.id)}">${lv}<td>${n}</td>${vals}</tr>`;
  });
  return `<table class="${kind}"><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

function plots(s: AblationSummary): string {
  const out: string[] = [];
  const withRoc = s.cells.filter((c) => c.roc);
  if (withRoc.length > 0) {
    out.push(linePlot({ title: 'ROC (student, mean TPR over seeds)', xLabel: 'false positive rate', yLabel: 'true positive rate', kind: 'roc', xDomain: [0, 1], yDomain: [0, 1] },
      [{ name: 'chance', color: '#bbb', x: [0, 1], y: [0, 1], dashed: true }, ...withRoc.map((c) => ({ name: cellLabel(c), color: colorOf(s, c), x: c.roc!.x, y: c.roc!.y }))]));
  }
  const terms = [...new Set(s.cells.flatMap((c) => Object.keys(c.losses)))];
  for (const t of terms) {
    out.push(linePlot({ title: `loss term ${t} (mean over seeds)`, xLabel: 'step', yLabel: t, kind: 'loss' },
      s.cells.filter((c) => c.losses[t]).map((c) => ({ name: cellLabel(c), color: colorOf(s, c), x: c.losses[t]!.x, y: c.losses[t]!.y }))));
  }
  const acc = s.metrics.find((d) => d.key === 'accuracy_pct');
  if (acc) {
    for (const [key, label] of [['params', 'student parameters'], ['wall_s', 'wall time per run (s)'], ['train_s', 'train time per run (s)']] as const) {
      const pts = s.cells.filter((c) => c.stats[key]?.mean !== null && c.stats[key]?.mean !== undefined && c.stats.accuracy_pct?.mean !== null && c.stats.accuracy_pct?.mean !== undefined)
        .map((c) => ({ name: cellLabel(c), color: colorOf(s, c), x: c.stats[key]!.mean!, y: c.stats.accuracy_pct!.mean!, ...(c.stats.accuracy_pct!.std !== null ? { yErr: c.stats.accuracy_pct!.std } : {}) }));
      if (pts.length > 0) out.push(scatterPlot({ title: `accuracy vs. ${label} (± std)`, xLabel: label, yLabel: 'accuracy (%)', kind: 'cost' }, pts));
    }
  }
  return out.length ? `<h2>Plots</h2><div class="plots">${out.join('\n')}</div>` : '';
}

export function renderAblationHtml(s: AblationSummary): string {
  const runs = s.cells.flatMap((c) => c.runs);
  const failed = s.cells.flatMap((c) => c.runs.filter((r) => r.status === 'failed').map((r) => ({ c, r })));
  const body: string[] = [
    `<h1>Ablation <code>${esc(s.ablation)}</code></h1>`,
    s.description ? `<p>${esc(s.description)}</p>` : '',
    `<p>Ablation file <code>${esc(s.file)}</code> · base recipe <code>${esc(s.base)}</code> · design ${esc(s.design)} · seeds ${esc(s.seeds.join(', '))} · baseline <code>${esc(s.baseline.cell)}</code><br>`,
    `${s.cells.length} cells × ${s.seeds.length} seeds = ${runs.length} runs: ${runs.filter((r) => r.status === 'done').length} finished, ${failed.length} failed, ${runs.filter((r) => r.status === 'missing').length} not run.` +
      (s.teacherAccuracy !== undefined ? ` Teacher accuracy on the same pairs: ${s.teacherAccuracy.toFixed(2)} %.` : '') + '</p>',
    `<p class="method"><b>Method.</b> ${esc(s.method.join(' '))} Green / red Δ cells: the 95 % interval excludes 0 in the better / worse direction.</p>`,
  ];
  for (const sec of SECTIONS) {
    const defs = metricsOf(s, sec);
    if (defs.length === 0) continue;
    body.push(`<h2 id="${sec}">${esc(SECTION_TITLES[sec])}${sec === 'groups' && s.groupAttribute ? `: ${esc(s.groupAttribute)}` : ''}</h2>`);
    if (sec === 'groups' && s.groupNote) body.push(`<p class="method">${esc(s.groupNote)}.</p>`);
    body.push('<h3>Mean ± std over seeds</h3>', table(s, defs, 'stats'));
    if (s.cells.length > 1) body.push(`<h3>Paired difference against <code>${esc(s.baseline.cell)}</code>, mean [95 % CI]</h3>`, table(s, defs, 'delta'));
  }
  body.push(plots(s));
  if (failed.length > 0) {
    body.push('<h2>Failed runs</h2><ul class="failed">', ...failed.map(({ c, r }) => `<li><code>${esc(r.name)}</code> (cell ${esc(cellLabel(c))}, seed ${r.seed}): ${esc(r.error ?? 'unknown error')} — log <code>cells/${esc(r.name)}.log</code></li>`), '</ul>');
  }
  body.push(`<p class="method">Same numbers: <code>results.csv</code>, <code>runs.csv</code>, <code>results.json</code>. Generated ${esc(s.generatedAt)}.</p>`);
  return `<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>Ablation ${esc(s.ablation)}</title><style>${CSS}</style></head><body>\n${body.filter(Boolean).join('\n')}\n</body></html>\n`;
}
