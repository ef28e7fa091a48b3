import { expect } from 'chai';
import type { AblationCell } from '../../core/ablation/cells.js';
import { finalValue, type CollectedRun, type MetricDef } from '../../core/ablation/results.js';
import type { AblationSpec } from '../../core/ablation/spec.js';
import { summarise, tprAt, type RunInput } from '../../core/ablation/summary.js';
import { renderAblationCsv, renderAblationMarkdown, renderRunsCsv } from '../../core/report/ablation-markdown.js';

const acc: MetricDef = { key: 'accuracy_pct', label: 'accuracy (%)', section: 'verification', better: 'higher', digits: 2, deltaUnit: 'pp' };
const spec = { file: 'a.yaml', name: 'abl', base: 'b.yaml', runsDir: 'runs', sets: [], seeds: [0, 1, 2], design: 'grid', parallel: 1, factors: [{ name: 'loss', levels: [] }], baseline: { loss: 'mse' } } as unknown as AblationSpec;
const cell = (id: string, isBaseline: boolean): AblationCell => ({ id, levels: { loss: id }, isBaseline, recipeFile: 'b.yaml', sets: [] });
const run = (c: AblationCell, seed: number, accuracy: number | null, status: RunInput['status'] = 'done', error?: string): RunInput => ({
  cell: c, seed, name: `${c.id}_s${seed}`, status, ...(error ? { error } : {}),
  ...(status === 'done' ? { collected: { defs: [acc], values: { accuracy_pct: accuracy }, losses: {}, wallIncomplete: false } satisfies CollectedRun } : {}),
});

describe('ablation summary and report', () => {
  // Same values as test/fixtures/ablation_stats.py: baseline 81.5, 84.25, 79.0; cell 83.0, (failed), 80.75.
  const base = cell('mse', true), cos = cell('cosine', false);
  const s = summarise(spec, [base, cos], [
    run(base, 0, 81.5), run(base, 1, 84.25), run(base, 2, 79.0),
    run(cos, 0, 83.0), run(cos, 1, null, 'failed', 'NaN in feature_cosine'), run(cos, 2, 80.75),
  ]);

  it('pairs by seed over the seeds both cells finished, with the numpy numbers', () => {
    const c = s.cells[1]!;
    expect(c.stats.accuracy_pct!.n).to.equal(2);
    expect(c.delta!.accuracy_pct!.seeds).to.deep.equal([0, 2]);
    expect(c.delta!.accuracy_pct!.mean!).to.be.closeTo(1.625, 1e-12);
    expect(c.delta!.accuracy_pct!.lo!).to.be.closeTo(0.03672440797816323, 1e-9);
    expect(c.delta!.accuracy_pct!.hi!).to.be.closeTo(3.2132755920218368, 1e-9);
    expect(s.cells[0]!.delta).to.equal(undefined);
    expect(s.cells[0]!.stats.accuracy_pct!.mean!).to.be.closeTo(81.58333333333333, 1e-12);
  });

  it('writes the same numbers to Markdown and both CSVs, and names the failed run', () => {
    const md = renderAblationMarkdown(s);
    expect(md).to.contain('| **mse** (baseline) | 3 | 81.58 ± 2.63 |');
    expect(md).to.contain('| cosine | 2 | 81.88 ± 1.59 |');
    expect(md).to.contain('| cosine | 2 | +1.63 [+0.04, +3.21] |');
    expect(md).to.contain('2 cells × 3 seeds = 6 runs: 5 finished, 1 failed, 0 not run.');
    expect(md).to.contain('- `cosine_s1` (cell cosine, seed 1): NaN in feature_cosine');
    const csv = renderAblationCsv(s).trim().split('\n');
    expect(csv[0]).to.equal('cell,loss,baseline,runs_done,runs_failed,accuracy_pct_mean,accuracy_pct_std,accuracy_pct_n,accuracy_pct_delta,accuracy_pct_delta_lo95,accuracy_pct_delta_hi95');
    expect(csv[2]!.split(',').slice(0, 5)).to.deep.equal(['cosine', 'cosine', 'false', '2', '1']);
    expect(Number(csv[2]!.split(',')[10])).to.be.closeTo(3.2132755920218368, 1e-9);
    expect(renderRunsCsv(s).trim().split('\n')[5]).to.equal('cosine_s1,cosine,cosine,1,failed,NaN in feature_cosine,');
  });

  it('averages ROC curves on their own segments and takes final losses over the last 10 %', () => {
    expect([0, 0.25, 0.5, 1].map((f) => tprAt({ x: [0, 0, 0.5, 1], y: [0, 0.6, 0.8, 1] }, f))).to.deep.equal([0.6, 0.7, 0.8, 1]);
    expect([0.1, 0.2].map((f) => tprAt({ x: [0, 0.2, 0.2, 1], y: [0, 0, 1, 1] }, f))).to.deep.equal([0, 1]);
    expect(finalValue(Array.from({ length: 25 }, (_, i) => i))).to.equal(23); // mean of the last 3
    expect(finalValue([])).to.equal(null);
  });
});
