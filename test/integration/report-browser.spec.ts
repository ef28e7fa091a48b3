import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { expect } from 'chai';
import sharp from 'sharp';
import type { AblationCell } from '../../core/ablation/cells.js';
import type { CollectedRun, MetricDef } from '../../core/ablation/results.js';
import type { AblationSpec } from '../../core/ablation/spec.js';
import { summarise, type RunInput } from '../../core/ablation/summary.js';
import { renderAblationHtml } from '../../core/report/ablation-html.js';
import { PALETTE } from '../../core/report/svg.js';
import { tmpDir } from '../helpers/fixtures.js';

/** The Debian package's binary first; CHROMIUM_PATH to point elsewhere. */
function findChromium(): string | undefined {
  const candidates = [process.env.CHROMIUM_PATH, 'chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable'].filter((c): c is string => !!c);
  for (const c of candidates) {
    if (c.includes('/') ? existsSync(c) : spawnSync('which', [c]).status === 0) return c;
  }
  return undefined;
}

function chromium(bin: string, args: readonly string[]): string {
  // --no-sandbox: CI runs as root, where Chromium refuses its sandbox.
  const r = spawnSync(bin, ['--headless', '--no-sandbox', '--disable-gpu', '--hide-scrollbars', ...args], { encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) throw new Error(`chromium exited ${r.status}: ${r.stderr.slice(-2000)}`);
  return r.stdout;
}

const defs: MetricDef[] = [
  { key: 'accuracy_pct', label: 'accuracy (%)', section: 'verification', better: 'higher', digits: 2, deltaUnit: 'pp' },
  { key: 'auc', label: 'AUC', section: 'verification', better: 'higher', digits: 4, deltaUnit: '' },
  { key: 'group_a_acc_pct', label: 'a acc (%)', section: 'groups', better: 'higher', digits: 2, deltaUnit: 'pp' },
  { key: 'groups_ser', label: 'SER', section: 'groups', better: 'lower', digits: 3, deltaUnit: '' },
  { key: 'loss_feature', label: 'final feature', section: 'loss', better: 'lower', digits: 4, deltaUnit: '' },
  { key: 'params', label: 'student params', section: 'cost', better: 'none', digits: 0, deltaUnit: '' },
  { key: 'wall_s', label: 'wall time (s)', section: 'cost', better: 'none', digits: 1, deltaUnit: 's' },
];

/** A synthetic 2 × 2 ablation with 3 seeds: what a finished sweep hands the renderer. */
function syntheticSummary() {
  const levels = [['mse', 'narrow'], ['mse', 'wide'], ['cosine', 'narrow'], ['cosine', 'wide']] as const;
  const cells: AblationCell[] = levels.map(([loss, width], i) => ({ id: `${loss}_${width}`, levels: { loss, width }, isBaseline: i === 0, recipeFile: 'base.yaml', sets: [] }));
  const runs: RunInput[] = cells.flatMap((cell, ci) => [0, 1, 2].map((seed): RunInput => {
    const q = 0.6 + 0.08 * ci + 0.01 * seed; // a cell's ROC bows out further with its index
    const collected: CollectedRun = {
      defs,
      values: { accuracy_pct: 80 + 3 * ci + seed, auc: 0.9 + 0.02 * ci, group_a_acc_pct: 78 + 2 * ci, groups_ser: 1.5 - 0.1 * ci, loss_feature: 0.1 / (ci + 1), params: 1000 * (1 + (ci % 2)), wall_s: 30 + 10 * (ci % 2) + seed },
      roc: { x: [0, 0.05, 0.2, 0.5, 1], y: [0, q, q + 0.2 * (1 - q), 1 - 0.2 * (1 - q), 1] },
      losses: { feature: { x: Array.from({ length: 20 }, (_, i) => i + 1), y: Array.from({ length: 20 }, (_, i) => (0.5 / (ci + 1)) * Math.exp(-i / 6) + 0.01 * seed) } },
      wallIncomplete: false,
    };
    return { cell, seed, name: `${cell.id}_s${seed}`, status: 'done', collected };
  }));
  const spec = {
    file: 'test.yaml', name: 'browser-check', base: 'base.yaml', runsDir: 'runs', sets: [], seeds: [0, 1, 2], design: 'grid', parallel: 1,
    factors: [{ name: 'loss', levels: [] }, { name: 'width', levels: [] }], baseline: { loss: 'mse', width: 'narrow' },
  } as unknown as AblationSpec;
  return summarise(spec, cells, runs);
}

describe('report.html in a real browser (headless Chromium)', function () {
  this.timeout(180_000);

  it('shows the result tables and the SVG plots', async function () {
    const bin = findChromium();
    if (!bin) {
      this.test!.title += ' (skipped: no chromium, chromium-browser or google-chrome on PATH, and CHROMIUM_PATH unset; Debian: apt-get install -y chromium)';
      this.skip();
    }
    const dir = tmpDir('browser');
    const file = path.join(dir, 'report.html');
    writeFileSync(file, renderAblationHtml(syntheticSummary()));
    const url = pathToFileURL(file).href;

    // The DOM as the browser parsed it: tables with one row per cell, inline SVG plots with their series.
    const dom = chromium(bin!, ['--dump-dom', url]);
    expect(dom).to.contain('<h1>Ablation <code>browser-check</code></h1>');
    const statsTables = dom.match(/<table class="stats">[\s\S]*?<\/table>/g) ?? [];
    expect(statsTables).to.have.length(4); // verification, groups, loss, cost
    expect(statsTables[0]!.match(/<tr( class="baseline")? data-cell=/g)).to.have.length(4);
    expect(statsTables[0]).to.contain('81.00 ± 1.00'); // baseline accuracy over seeds 80, 81, 82
    expect(dom.match(/<table class="delta">/g)).to.have.length(4);
    expect(dom).to.contain('+9.00 [+9.00, +9.00]'); // cosine_wide − mse_narrow accuracy, every seed +9
    expect(dom.match(/<svg[^>]* class="plot roc"/g)).to.have.length(1);
    expect(dom.match(/<svg[^>]* class="plot loss"/g)).to.have.length(1);
    expect(dom.match(/<svg[^>]* class="plot cost"/g)).to.have.length(2); // accuracy vs params, vs wall time
    const roc = /<svg[^>]* class="plot roc"[\s\S]*?<\/svg>/.exec(dom)![0];
    expect(roc.match(/<polyline class="series"/g)).to.have.length(5); // chance + 4 cells

    // Rendered pixels: the plots' series colours are on screen, not just in the markup.
    const png = path.join(dir, 'report.png');
    chromium(bin!, [`--screenshot=${png}`, '--window-size=1300,3600', url]);
    const { data, info } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const count = (hex: string) => {
      const [r, g, b] = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
      let n = 0;
      for (let i = 0; i < data.length; i += 3) if (Math.abs(data[i]! - r!) < 12 && Math.abs(data[i + 1]! - g!) < 12 && Math.abs(data[i + 2]! - b!) < 12) n++;
      return n;
    };
    expect(info.width).to.equal(1300);
    for (const c of PALETTE.slice(0, 4)) expect(count(c), `pixels of ${c}`).to.be.greaterThan(200);
    let nonWhite = 0;
    for (let i = 0; i < data.length; i += 3) if (data[i]! < 200 || data[i + 1]! < 200 || data[i + 2]! < 200) nonWhite++;
    expect(nonWhite / (info.width * info.height)).to.be.greaterThan(0.01);
  });
});
