// Small self-contained SVG charts for the HTML reports: no scripts, no external assets, so the
// page renders the same from a file:// URL, in a browser without network, or pasted into a wiki.

export const PALETTE: readonly string[] = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#7f7f7f', '#bcbd22'];

export interface Series {
  readonly name: string;
  readonly color: string;
  readonly x: readonly number[];
  readonly y: readonly number[];
  readonly dashed?: boolean;
}

export interface Point {
  readonly name: string;
  readonly color: string;
  readonly x: number;
  readonly y: number;
  /** ± half-width of the vertical error bar. */
  readonly yErr?: number;
}

interface Frame {
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  /** CSS class on the <svg>, for tests and styling. */
  readonly kind: string;
  readonly xDomain?: readonly [number, number];
  readonly yDomain?: readonly [number, number];
}

const W = 560, H = 340, M = { l: 62, r: 16, t: 30, b: 46 };
const LEGEND_W = 170;
let clipIds = 0;

export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** "Nice" tick values (steps of 1, 2 or 5 × 10^k) covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  return out;
}

function fmtTick(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e6) return `${+(v / 1e6).toPrecision(3)}M`;
  if (a >= 1e4) return `${+(v / 1e3).toPrecision(3)}k`;
  return String(+v.toPrecision(4));
}

function domain(values: readonly number[], fixed?: readonly [number, number]): [number, number] {
  if (fixed) return [fixed[0], fixed[1]];
  const v = values.filter(Number.isFinite);
  if (v.length === 0) return [0, 1];
  let lo = Math.min(...v), hi = Math.max(...v);
  if (hi === lo) { const pad = Math.abs(lo) * 0.1 || 1; lo -= pad; hi += pad; } else { const pad = (hi - lo) * 0.05; lo -= pad; hi += pad; }
  return [lo, hi];
}

function frame(f: Frame, xd: [number, number], yd: [number, number], legend: readonly { name: string; color: string; dashed?: boolean }[], body: (sx: (x: number) => number, sy: (y: number) => number) => string): string {
  const pw = W - M.l - M.r, ph = H - M.t - M.b;
  const sx = (x: number) => M.l + ((x - xd[0]) / (xd[1] - xd[0])) * pw;
  const sy = (y: number) => M.t + ph - ((y - yd[0]) / (yd[1] - yd[0])) * ph;
  const parts: string[] = [];
  parts.push(`<rect x="${M.l}" y="${M.t}" width="${pw}" height="${ph}" fill="#fff" stroke="#999"/>`);
  for (const t of niceTicks(xd[0], xd[1])) {
    if (t < xd[0] || t > xd[1]) continue;
    parts.push(`<line x1="${sx(t).toFixed(1)}" y1="${M.t}" x2="${sx(t).toFixed(1)}" y2="${M.t + ph}" stroke="#eee"/>`,
      `<text x="${sx(t).toFixed(1)}" y="${M.t + ph + 16}" text-anchor="middle" font-size="11">${fmtTick(t)}</text>`);
  }
  for (const t of niceTicks(yd[0], yd[1])) {
    if (t < yd[0] || t > yd[1]) continue;
    parts.push(`<line x1="${M.l}" y1="${sy(t).toFixed(1)}" x2="${M.l + pw}" y2="${sy(t).toFixed(1)}" stroke="#eee"/>`,
      `<text x="${M.l - 6}" y="${(sy(t) + 4).toFixed(1)}" text-anchor="end" font-size="11">${fmtTick(t)}</text>`);
  }
  const clipId = `clip-${f.kind.replace(/[^A-Za-z0-9-]/g, '')}-${++clipIds}`; // unique within a page of many plots
  parts.push(`<g clip-path="url(#${clipId})">${body(sx, sy)}</g>`);
  parts.push(`<text x="${M.l + pw / 2}" y="${H - 8}" text-anchor="middle" font-size="12">${escapeXml(f.xLabel)}</text>`,
    `<text x="14" y="${M.t + ph / 2}" text-anchor="middle" font-size="12" transform="rotate(-90 14 ${M.t + ph / 2})">${escapeXml(f.yLabel)}</text>`,
    `<text x="${M.l}" y="18" font-size="13" font-weight="bold">${escapeXml(f.title)}</text>`);
  legend.forEach((s, i) => {
    const y = M.t + 8 + i * 18;
    parts.push(`<g class="legend-item"><line x1="${W + 8}" y1="${y}" x2="${W + 30}" y2="${y}" stroke="${s.color}" stroke-width="3"${s.dashed ? ' stroke-dasharray="5 3"' : ''}/><text x="${W + 36}" y="${y + 4}" font-size="11">${escapeXml(s.name)}</text></g>`);
  });
  const clip = `<defs><clipPath id="${clipId}"><rect x="${M.l}" y="${M.t}" width="${pw}" height="${ph}"/></clipPath></defs>`;
  return `<svg xmlns="http://www.w3.org/2000/svg" class="plot ${f.kind}" viewBox="0 0 ${W + LEGEND_W} ${H}" width="${W + LEGEND_W}" height="${H}" role="img" font-family="sans-serif"><title>${escapeXml(f.title)}</title>${clip}${parts.join('')}</svg>`;
}

/** Lines (one per series), e.g. ROC curves or loss curves. */
export function linePlot(f: Frame, series: readonly Series[]): string {
  const xd = domain(series.flatMap((s) => s.x), f.xDomain), yd = domain(series.flatMap((s) => s.y), f.yDomain);
  return frame(f, xd, yd, series, (sx, sy) => series.map((s) => {
    const pts = s.x.map((x, i) => [x, s.y[i]!] as const).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
    return `<polyline class="series" data-name="${escapeXml(s.name)}" fill="none" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="5 3"' : ''} points="${pts.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ')}"/>`;
  }).join(''));
}

/** Points with optional vertical error bars, e.g. accuracy against cost. */
export function scatterPlot(f: Frame, points: readonly Point[]): string {
  const xd = domain(points.map((p) => p.x), f.xDomain);
  const yd = domain(points.flatMap((p) => [p.y - (p.yErr ?? 0), p.y + (p.yErr ?? 0)]), f.yDomain);
  return frame(f, xd, yd, points, (sx, sy) => points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y)).map((p) => {
    const bar = p.yErr ? `<line x1="${sx(p.x).toFixed(1)}" y1="${sy(p.y - p.yErr).toFixed(1)}" x2="${sx(p.x).toFixed(1)}" y2="${sy(p.y + p.yErr).toFixed(1)}" stroke="${p.color}" stroke-width="1.5"/>` : '';
    return `<g class="point" data-name="${escapeXml(p.name)}">${bar}<circle cx="${sx(p.x).toFixed(1)}" cy="${sy(p.y).toFixed(1)}" r="5" fill="${p.color}"/></g>`;
  }).join(''));
}
