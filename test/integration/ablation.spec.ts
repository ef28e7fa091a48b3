import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import type { AblationSummary } from '../../core/ablation/summary.js';
import { ablationFixture } from '../helpers/ablation-fixture.js';
import { CLI, runCliAsync } from '../helpers/cli.js';

const T_975_1DOF = 12.706204736174694; // scipy.stats.t.ppf(0.975, 1)

const readJson = (f: string) => JSON.parse(readFileSync(f, 'utf8'));
const alive = (pid: number) => { try { process.kill(pid, 0); return true; } catch { return false; } };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Step of a run's latest checkpoint (0 when none). */
function checkpointStep(dir: string): number {
  try { return Number(/-(\d+)$/.exec(readJson(path.join(dir, 'checkpoints', 'latest.json')).checkpoint)![1]); } catch { return 0; }
}

/** Finished runs, and unfinished ones with a checkpoint at step 4 or later (mid-training or evaluating). */
function runStatus(cellsDir: string): { complete: string[]; partial: string[] } {
  const complete: string[] = [], partial: string[] = [];
  if (!existsSync(cellsDir)) return { complete, partial };
  for (const name of readdirSync(cellsDir)) {
    const m = path.join(cellsDir, name, 'manifest.json');
    if (!existsSync(m)) continue;
    let status: string;
    try { status = readJson(m).status; } catch { continue; } // being renamed into place
    if (status === 'complete') complete.push(name);
    else if (checkpointStep(path.join(cellsDir, name)) >= 4) partial.push(name);
  }
  return { complete, partial };
}

describe('facedistill ablate (integration)', function () {
  this.timeout(600_000);

  it('2 factors × 2 levels × 2 seeds: killed mid-sweep, resumed without re-running finished runs; mean ± std and paired deltas for every metric', async () => {
    const f = await ablationFixture('ablate', { steps: 16, checkpointEvery: 4 });
    const file = path.join(f.dir, 'sweep.yaml');
    // The runnable example's loss factor, on the tiny fixture recipe (its width levels re-pointed at the 16 px student).
    writeFileSync(file, `extends: ${path.resolve('examples/ablations/feature-kd-losses.yaml')}
name: sweep
base: base.yaml
runsDir: ${f.runsDir}
factors:
  width:
    standard: { student.widths: [8, 16] }
    narrow: { student.widths: [4, 8] }
seeds: [0, 1]
parallel: 2
`);
    const root = path.join(f.runsDir, 'sweep'), cellsDir = path.join(root, 'cells');

    // 1. Start the sweep; kill it (SIGKILL, no clean-up) once 2 runs are finished and another is mid-training.
    const sweep = spawn(process.execPath, [CLI, 'ablate', file], { stdio: ['ignore', 'ignore', 'pipe'] });
    let firstErr = '';
    sweep.stderr.on('data', (d) => (firstErr += d));
    const closed = new Promise<void>((r) => sweep.on('close', () => r()));
    let midway: string[] = [];
    for (let i = 0; i < 4000; i++) {
      const s = runStatus(cellsDir);
      if (s.complete.length >= 2 && s.partial.length >= 1) { midway = s.partial; break; }
      await sleep(50);
    }
    sweep.kill('SIGKILL');
    await closed;
    // Its children notice (stdin closes) and stop: no orphan keeps writing into the run folders.
    const pids = Object.values(readJson(path.join(root, 'ablation.json')).runs as Record<string, { pid?: number }>).flatMap((r) => (r.pid ? [r.pid] : []));
    for (let i = 0; i < 100 && pids.some(alive); i++) await sleep(100);
    expect(pids.filter(alive), 'children still running after the sweep was killed').to.deep.equal([]);
    const atKill = runStatus(cellsDir);
    // Stopped, not run to the end: a run that was mid-training when the sweep died is still unfinished.
    expect(midway.filter((n) => !atKill.complete.includes(n)), `mid-training at the kill: ${midway.join(', ')}`).to.not.be.empty;
    expect(atKill.complete.length, firstErr).to.be.at.least(2);
    expect(atKill.complete.length).to.be.below(8);
    const finishedAt = Object.fromEntries(atKill.complete.map((n) => [n, readJson(path.join(cellsDir, n, 'manifest.json')).finishedAt as string]));

    // A report of what is finished so far, without running anything or touching the sweep's record.
    const record = readFileSync(path.join(root, 'ablation.json'), 'utf8');
    const partial = await runCliAsync(['ablate', file, '--report-only']);
    expect(partial.code, partial.stderr).to.equal(0);
    expect(readFileSync(path.join(root, 'report.md'), 'utf8')).to.contain(`8 runs: ${atKill.complete.length} finished, 0 failed, ${8 - atKill.complete.length} not run.`);
    expect(readFileSync(path.join(root, 'ablation.json'), 'utf8')).to.equal(record);

    // 2. Resume: finished runs are skipped (same recipe hash), interrupted ones continue from their checkpoint.
    const resumed = await runCliAsync(['ablate', file]);
    expect(resumed.code, resumed.stderr).to.equal(0);
    expect(resumed.stderr).to.contain(`8 runs; ${atKill.complete.length} finished already, ${8 - atKill.complete.length} to run`);
    for (const n of atKill.complete) {
      expect(readJson(path.join(cellsDir, n, 'manifest.json')).finishedAt, n).to.equal(finishedAt[n]);
      expect(readFileSync(path.join(cellsDir, `${n}.log`), 'utf8').match(/^=== /gm), `${n} ran once`).to.have.length(1);
    }
    for (const n of atKill.partial) {
      const log = readFileSync(path.join(cellsDir, `${n}.log`), 'utf8');
      expect(log, n).to.match(/facedistill run \(resume\) ===/);
      expect(log, n).to.match(/resuming from checkpoint train step (4|8|12|16)/);
      const steps = readFileSync(path.join(cellsDir, n, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).step as number);
      expect(steps, `${n} metrics continue the checkpoint`).to.deep.equal(Array.from({ length: 16 }, (_, i) => i + 1));
    }
    expect(runStatus(cellsDir).complete).to.have.length(8);

    // 3. One cache for every cell: teacher embeddings computed once and reused.
    expect(readdirSync(path.join(f.runsDir, '.cache', 'teacher-embeddings')).filter((n) => n.endsWith('.bin'))).to.have.length(1);
    const reusing = readdirSync(cellsDir).filter((n) => n.endsWith('.log') && /teacher embeddings: reusing \d+ cached rows/.test(readFileSync(path.join(cellsDir, n), 'utf8')));
    expect(reusing.length).to.be.at.least(5);

    // 4. The numbers: mean ± std and a paired delta for every metric the cell and the baseline both have.
    const s = readJson(path.join(root, 'results.json')) as AblationSummary;
    expect(s.cells.map((c) => c.id)).to.deep.equal(['mse-normalised_standard', 'mse-normalised_narrow', 'mse_standard', 'mse_narrow']);
    expect(s.baseline.cell).to.equal('mse-normalised_standard');
    const keys = s.metrics.map((m) => m.key);
    for (const k of ['accuracy_pct', 'tar_at_far_0.001_pct', 'auc', 'cosine', 'spearman', 'decisions_agree_pct',
      'group_a_tpr_pct', 'group_a_fpr_pct', 'group_b_tpr_pct', 'group_b_fpr_pct', 'loss_feature_mse-normalised', 'loss_feature_mse',
      'params', 'train_s', 'wall_s', 'train_images_per_s']) expect(keys).to.include(k);
    const base = s.cells[0]!;
    for (const c of s.cells) {
      expect(c.runs.map((r) => r.status)).to.deep.equal(['done', 'done']);
      for (const k of keys) {
        const has = c.runs.every((r) => r.values[k] !== undefined && r.values[k] !== null);
        if (!has) continue;
        expect(c.stats[k]!.n, `${c.id} ${k}`).to.equal(2);
        expect(c.stats[k]!.std, `${c.id} ${k}`).to.be.a('number');
        if (c.isBaseline || !base.runs.every((r) => r.values[k] !== null && r.values[k] !== undefined)) continue;
        expect(c.delta![k]!.n, `${c.id} Δ ${k}`).to.equal(2);
        expect(c.delta![k]!.lo, `${c.id} Δ ${k}`).to.be.a('number');
      }
    }
    // Against a hand computation from the runs' own eval.json files.
    const acc = (run: string) => 100 * readJson(path.join(cellsDir, run, 'eval.json')).student.accuracy;
    const [x0, x1, b0, b1] = [acc('mse_narrow_s0'), acc('mse_narrow_s1'), acc('mse-normalised_standard_s0'), acc('mse-normalised_standard_s1')];
    const cell = s.cells.find((c) => c.id === 'mse_narrow')!;
    expect(cell.stats.accuracy_pct!.mean!).to.be.closeTo((x0 + x1) / 2, 1e-9);
    expect(cell.stats.accuracy_pct!.std!).to.be.closeTo(Math.abs(x0 - x1) / Math.SQRT2, 1e-9);
    const [d0, d1] = [x0 - b0, x1 - b1], half = T_975_1DOF * (Math.abs(d0 - d1) / Math.SQRT2) / Math.SQRT2;
    expect(cell.delta!.accuracy_pct!.mean!).to.be.closeTo((d0 + d1) / 2, 1e-9);
    expect(cell.delta!.accuracy_pct!.lo!).to.be.closeTo((d0 + d1) / 2 - half, 1e-6);
    expect(cell.delta!.accuracy_pct!.hi!).to.be.closeTo((d0 + d1) / 2 + half, 1e-6);
    expect(cell.runs[0]!.values.params).to.equal(readJson(path.join(cellsDir, 'mse_narrow_s0', 'manifest.json')).models.student.params);

    // 5. The same numbers in report.md and results.csv.
    const md = readFileSync(path.join(root, 'report.md'), 'utf8');
    const fmt = (x: number) => x.toFixed(2).replace('-', '−');
    expect(md).to.contain(`| mse | narrow | 2 | ${fmt(cell.stats.accuracy_pct!.mean!)} ± ${fmt(cell.stats.accuracy_pct!.std!)} |`);
    const sign = (x: number) => (x > 0 ? '+' : x < 0 ? '−' : '') + Math.abs(x).toFixed(2);
    expect(md).to.contain(`${sign(cell.delta!.accuracy_pct!.mean!)} [${sign(cell.delta!.accuracy_pct!.lo!)}, ${sign(cell.delta!.accuracy_pct!.hi!)}]`);
    for (const m of s.metrics) expect(md, m.label).to.contain(m.label.replace(/\|/g, '\\|'));
    const csv = readFileSync(path.join(root, 'results.csv'), 'utf8').trim().split('\n').map((l) => l.split(','));
    const col = (name: string) => csv[0]!.indexOf(name);
    const row = csv.find((r) => r[0] === 'mse_narrow')!;
    expect(Number(row[col('accuracy_pct_mean')])).to.be.closeTo(cell.stats.accuracy_pct!.mean!, 1e-9);
    expect(Number(row[col('accuracy_pct_delta_lo95')])).to.be.closeTo(cell.delta!.accuracy_pct!.lo!, 1e-9);
    expect(readFileSync(path.join(root, 'runs.csv'), 'utf8').trim().split('\n')).to.have.length(9);
    const html = readFileSync(path.join(root, 'report.html'), 'utf8');
    expect(html).to.contain('class="plot roc"').and.to.contain('class="plot loss"').and.to.contain('class="plot cost"');
  });

  it('a failing run is reported with its error and does not stop the others; a re-run retries only it', async () => {
    const f = await ablationFixture('ablate-fail', { steps: 4, checkpointEvery: 2 });
    const file = path.join(f.dir, 'fail.yaml');
    writeFileSync(file, `name: fail
base: base.yaml
runsDir: ${f.runsDir}
factors:
  projection:
    auto: {}
    never: { stages.0.strategy.projection: never, student.embeddingDim: 16 }
seeds: [3]
parallel: 1
`);
    const first = await runCliAsync(['ablate', file]);
    expect(first.code, first.stderr).to.equal(3);
    expect(first.stderr).to.match(/never_s3: failed: feature-kd: student dim 16 ≠ teacher dim 32 and projection is "never"/);
    expect(first.stderr).to.match(/auto_s3: done in/);
    const md = readFileSync(path.join(f.runsDir, 'fail', 'report.md'), 'utf8');
    expect(md).to.contain('2 runs: 1 finished, 1 failed');
    expect(md).to.match(/## Failed runs\n\n- `never_s3` \(cell never, seed 3\): feature-kd: student dim 16 ≠ teacher dim 32/);
    const again = await runCliAsync(['ablate', file]);
    expect(again.code).to.equal(3);
    expect(again.stderr).to.contain('2 runs; 1 finished already, 1 to run');
  });

  it('a run started by a sweep stops when the sweep dies, even mid-training with no I/O between steps', async () => {
    const f = await ablationFixture('ablate-orphan', { steps: 3000, checkpointEvery: 1000 });
    const recipe = path.join(f.dir, 'long.yaml'), stepFile = path.join(f.dir, 'step');
    writeFileSync(recipe, readFileSync(f.base, 'utf8').replace('name: base', `name: long\nplugins: [${path.resolve('dist/test/fixtures/test-strategies.js')}]`)
      .replace('{ kind: feature-kd, loss: mse-normalised }', '{ kind: test-count-steps }'));
    // A stand-in for the sweep: it starts the run with stdin piped, prints the run's pid, then waits.
    const parent = spawn(process.execPath, ['-e', `
      const { spawn } = require('node:child_process');
      const c = spawn(process.execPath, [${JSON.stringify(CLI)}, 'run', ${JSON.stringify(recipe)}, '--stop-with-parent', '--quiet'], { stdio: ['pipe', 'ignore', 'ignore'] });
      console.log(c.pid);
      setInterval(() => {}, 1000);`], { stdio: ['ignore', 'pipe', 'ignore'], env: { ...process.env, FACEDISTILL_TEST_STEP_FILE: stepFile } });
    const pid = await new Promise<number>((r) => parent.stdout.once('data', (d) => r(Number(String(d).trim()))));
    const step = () => (existsSync(stepFile) ? Number(readFileSync(stepFile, 'utf8')) : 0);
    for (let i = 0; i < 1200 && step() < 20; i++) await sleep(50);
    const atKill = step();
    expect(atKill, 'the run reached its training loop').to.be.at.least(20);
    parent.kill('SIGKILL');
    for (let i = 0; i < 1200 && alive(pid); i++) await sleep(100);
    expect(alive(pid)).to.equal(false);
    // It stopped right away: a stdin listener on the busy main thread would hear the pipe close only
    // at the first I/O, the checkpoint at step 1000.
    expect(step() - atKill, `steps after the kill (killed at ${atKill})`).to.be.below(500);
    expect(readJson(path.join(f.runsDir, 'long', 'manifest.json')).status).to.equal('running');
  });
});
