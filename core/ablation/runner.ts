// Runs an ablation's runs as child processes (the CLI's `run`, one backend each), a few at a
// time; skips finished runs, resumes interrupted ones, records failures without stopping the
// others, and writes the report from whatever is finished.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, writeSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Container } from 'inversify';
import { stringify as toYaml } from 'yaml';
import { acquireLock, LockHeldError } from '../util/folder-lock.js';
import { RunError } from '../engine/errors.js';
import { renderAblationHtml } from '../report/ablation-html.js';
import { renderAblationCsv, renderAblationMarkdown, renderRunsCsv } from '../report/ablation-markdown.js';
import { ensureDir, writeFileAtomic, writeJsonAtomic } from '../util/fs.js';
import type { Logger } from '../util/logger.js';
import { planRuns, type AblationLayout, type AblationRun } from './cells.js';
import { collectRun, isFinished, manifestHash } from './results.js';
import type { AblationSpec } from './spec.js';
import { SweepStateFile, type Attempt, type RunState } from './state.js';
import { summarise, type AblationSummary, type RunInput } from './summary.js';

export interface AblateOptions {
  /** A fresh root container per cell recipe (plugins load into it). */
  readonly rootFor: () => Container;
  /** The CLI entry file children run (`node <cliEntry> run <recipe>`). */
  readonly cliEntry: string;
  readonly log: Logger;
  /** Overrides the file's `parallel:`. */
  readonly parallel?: number;
  /** Only (re)write the report from the runs already finished. */
  readonly reportOnly?: boolean;
}

export interface AblateResult {
  readonly layout: AblationLayout;
  readonly summary: AblationSummary;
  readonly finished: number;
  readonly failed: number;
  /** Runs skipped because a finished run of the same recipe was already there. */
  readonly skipped: number;
}

const alive = (pid: number) => { try { process.kill(pid, 0); return true; } catch (e) { return (e as NodeJS.ErrnoException).code === 'EPERM'; } };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One sweep per ablation folder at a time. A lock left by a killed sweep (dead pid) is taken over. */
async function takeLock(layout: AblationLayout): Promise<() => Promise<void>> {
  try {
    return await acquireLock(path.join(layout.root, '.lock'), 'facedistill ablate');
  } catch (e) {
    if (e instanceof LockHeldError) throw new RunError(`another \`facedistill ablate\` is running this ablation: ${e.message}`);
    throw e;
  }
}

/** The error a failed child printed last (`error: …`), else how it ended. */
async function failureOf(logFile: string, code: number | null, signal: string | null): Promise<string> {
  let tail = '';
  try { tail = (await readFile(logFile, 'utf8')).slice(-20000); } catch { /* no log */ }
  const lines = tail.split('\n');
  const at = lines.map((l) => l.startsWith('error: ')).lastIndexOf(true);
  if (at >= 0) return lines[at]!.slice('error: '.length).replace(/^Error: /, '').trim();
  return signal ? `killed by ${signal}` : `exit code ${code}`;
}

function writeCellRecipe(run: AblationRun, spec: AblationSpec): Promise<void> {
  const { extends: _e, ...value } = run.recipe.source.value;
  const header = `# Written by \`facedistill ablate\` (edits are overwritten): ablation ${spec.name}, cell ${run.cell.id}, seed ${run.seed}.\n` +
    `# ${path.relative(process.cwd(), run.cell.recipeFile)} + ${run.cell.sets.length ? run.cell.sets.map((s) => s.key).join(', ') : 'no overrides'}; recipe hash ${run.recipe.hash.slice(0, 12)}\n`;
  return writeFileAtomic(run.recipeOut, header + toYaml(value));
}

/** Runs one child; resolves when it exits. stdin stays open: the child stops when the sweep dies. */
function runChild(o: AblateOptions, run: AblationRun, mode: Attempt['mode'], onSpawn: (pid: number) => void): Promise<{ code: number | null; signal: string | null; wallSec: number }> {
  const fd = openSync(run.logFile, 'a');
  writeSync(fd, `\n=== ${new Date().toISOString()} facedistill run (${mode}) ===\n`);
  const args = [o.cliEntry, 'run', run.recipeOut, '--stop-with-parent', ...(mode === 'resume' ? ['--resume'] : mode === 'fresh' ? ['--fresh'] : [])];
  const t0 = performance.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { stdio: ['pipe', fd, fd], env: process.env });
    closeSync(fd);
    if (child.pid !== undefined) onSpawn(child.pid);
    child.on('error', (e) => { resolve({ code: null, signal: `spawn error: ${e.message}`, wallSec: (performance.now() - t0) / 1000 }); });
    child.on('close', (code, signal) => resolve({ code, signal, wallSec: (performance.now() - t0) / 1000 }));
  });
}

export async function runAblation(spec: AblationSpec, o: AblateOptions): Promise<AblateResult> {
  const { log } = o;
  const { layout, cells, runs } = await planRuns(spec, o.rootFor);
  await ensureDir(layout.cellsDir);
  // --report-only reads run folders and writes the report only: it may run beside a live sweep.
  const release = o.reportOnly ? async () => {} : await takeLock(layout);
  const state = SweepStateFile.load(path.join(layout.root, 'ablation.json'), spec.name, spec.file);
  let skipped = 0, finished = 0;
  try {
    const needsEval = (r: AblationRun) => r.recipe.evalPairs !== undefined;
    const todo: { run: AblationRun; st: RunState; mode: Attempt['mode'] }[] = [];
    for (const run of runs) {
      const st = state.run(run.name, run.cell.id, run.seed, run.recipe.hash);
      // A child of a killed sweep may still be finishing its last write.
      if (st.status === 'running' && !o.reportOnly) {
        if (st.pid !== undefined) for (let i = 0; i < 300 && alive(st.pid); i++) await sleep(100);
        const last = st.attempts.at(-1);
        if (last && last.wallSec === undefined) last.interrupted = true;
        st.status = 'pending';
        delete st.pid;
      }
      if (isFinished(run.dir, run.recipe.hash, needsEval(run))) {
        if (st.status !== 'done') { st.status = 'done'; delete st.error; }
        skipped++;
        continue;
      }
      if (o.reportOnly) continue;
      const h = manifestHash(run.dir);
      todo.push({ run, st, mode: h === undefined ? 'new' : h === run.recipe.hash ? 'resume' : 'fresh' });
    }
    if (!o.reportOnly) await state.save();
    const total = runs.length;
    if (!o.reportOnly) {
      log.info(`ablation ${spec.name}: ${cells.length} cells × ${spec.seeds.length} seeds = ${total} runs; ${skipped} finished already, ${todo.length} to run, ${o.parallel ?? spec.parallel} at a time (${path.relative(process.cwd(), layout.root)}/)`);
    }
    let next = 0, started = skipped;
    const runOne = async ({ run, st, mode }: (typeof todo)[number]) => {
      const k = ++started;
      log.info(`[${k}/${total}] ${run.name}: ${mode === 'new' ? 'start' : mode === 'resume' ? 'resume' : 'restart (its recipe changed; the old run is moved aside)'}`);
      await writeCellRecipe(run, spec);
      const attempt: Attempt = { startedAt: new Date().toISOString(), mode };
      st.attempts.push(attempt);
      st.status = 'running';
      const res = await runChild(o, run, mode, (pid) => { st.pid = pid; void state.save(); });
      Object.assign(attempt, { wallSec: res.wallSec, exitCode: res.code, signal: res.signal });
      delete st.pid;
      if (res.code === 0 && isFinished(run.dir, run.recipe.hash, needsEval(run))) {
        st.status = 'done'; delete st.error; finished++;
        const acc = collectRun(run.dir, st).values.accuracy_pct;
        log.info(`[${k}/${total}] ${run.name}: done in ${res.wallSec.toFixed(1)} s${acc !== undefined && acc !== null ? ` (accuracy ${acc.toFixed(2)} %)` : ''}`);
      } else {
        st.status = 'failed'; st.error = await failureOf(run.logFile, res.code, res.signal);
        log.warn(`[${k}/${total}] ${run.name}: failed: ${st.error} (log: ${path.relative(process.cwd(), run.logFile)})`);
      }
      await state.save();
    };
    const worker = async () => { while (next < todo.length) await runOne(todo[next++]!); };
    const parallel = o.parallel ?? spec.parallel;
    // Nothing finished yet means a cold shared cache: the first run goes alone and fills it
    // (teacher embeddings, detected faces, generators), so the parallel ones reuse it instead of
    // racing to compute the same thing.
    if (parallel > 1 && skipped === 0 && todo.length > 1) {
      log.info('the first run goes alone: it fills the shared cache that the others reuse');
      await runOne(todo[next++]!);
    }
    await Promise.all(Array.from({ length: Math.min(parallel, Math.max(1, todo.length - next)) }, worker));

    const inputs: RunInput[] = runs.map((run) => {
      const st = state.state.runs[run.name]!;
      const status = st.status === 'done' ? 'done' : st.status === 'failed' ? 'failed' : 'missing';
      return { cell: run.cell, seed: run.seed, name: run.name, status, ...(st.error && status === 'failed' ? { error: st.error } : {}), ...(status === 'done' ? { collected: collectRun(run.dir, st) } : {}) };
    });
    const summary = summarise(spec, cells, inputs);
    await writeFileAtomic(path.join(layout.root, 'report.md'), renderAblationMarkdown(summary));
    await writeFileAtomic(path.join(layout.root, 'report.html'), renderAblationHtml(summary));
    await writeFileAtomic(path.join(layout.root, 'results.csv'), renderAblationCsv(summary));
    await writeFileAtomic(path.join(layout.root, 'runs.csv'), renderRunsCsv(summary));
    await writeJsonAtomic(path.join(layout.root, 'results.json'), summary);
    return { layout, summary, finished, failed: inputs.filter((r) => r.status === 'failed').length, skipped };
  } finally {
    if (!o.reportOnly) await state.save();
    await release();
  }
}
