// A run end to end: lock and prepare its folder, build and read everything (refusing bad
// input before a write), train the stages, export, evaluate, report. The parts live beside
// this file: run-folder.ts (folder, lock, manifest), build-context.ts (components),
// hand-off.ts (stage outputs), trainer.ts (one stage), evaluate-models.ts, run-report.ts.
import { existsSync, readFileSync } from 'node:fs';
import { rmdir } from 'node:fs/promises';
import path from 'node:path';
import type { Container } from 'inversify';
import { selectBackend, type BackendChoice } from '../backends/select.js';
import { TOKENS } from '../di/tokens.js';
import type { AgreementResult, VerificationResult } from '../eval/evaluate.js';
import { MemoPairSource } from '../eval/memo-pairs.js';
import type { DataSource, DataSourceInfo } from '../interfaces/data-source.js';
import type { RunEvent } from '../interfaces/events.js';
import type { Hook } from '../interfaces/hook.js';
import type { Sink } from '../interfaces/sink.js';
import { saveLayersModel } from '../models/model-files.js';
import type { Recipe } from '../recipe/validate.js';
import { ensureDir, writeFileAtomic, writeJsonAtomic } from '../util/fs.js';
import type { Logger } from '../util/logger.js';
import { Rng } from '../util/rng.js';
import { build, buildContext, preflight } from './build-context.js';
import { CheckpointStore } from './checkpoint.js';
import { RunError } from './errors.js';
import { evaluateModels, teacherEvalCacheFile } from './evaluate-models.js';
import { HandOffStore } from './hand-off.js';
import { periodicEvaluation } from './periodic-eval.js';
import { lockRun, prepareRunDir, RunManifest } from './run-folder.js';
import { writeRunReport, type StageRow } from './run-report.js';
import { MetricsJsonlSink, ProgressSink } from './sinks.js';
import { TeacherCache } from './teacher-cache.js';
import { trainStage } from './trainer.js';

// The parts callers used from here before they moved.
export { build, buildContext, cacheDirOf, contextFor } from './build-context.js';
export { evaluateModels } from './evaluate-models.js';
export { prepareRunDir, runDirOf } from './run-folder.js';

export interface RunOptions {
  readonly root: Container;
  readonly log: Logger;
  readonly resume?: boolean;
  readonly fresh?: boolean;
  readonly progress?: boolean;
}

export interface RunResult {
  readonly dir: string;
  readonly teacher?: VerificationResult;
  readonly student?: VerificationResult;
  readonly agreement?: AgreementResult;
  readonly backend: BackendChoice;
}

/** Runs a recipe end to end: stages → export → evaluation → report. */
export async function runRecipe(recipe: Recipe, o: RunOptions): Promise<RunResult> {
  const runsRoot = path.resolve(recipe.shape.runsDir);
  const created = existsSync(runsRoot) ? [] : [runsRoot];
  const release = await lockRun(recipe);
  try {
    return await runLocked(recipe, o);
  } finally {
    await release();
    // The lock's folder, and the runs folder if the lock made it, go when empty: a refused recipe leaves nothing behind.
    for (const d of [path.join(runsRoot, '.locks'), ...created]) await rmdir(d).catch(() => undefined);
  }
}

/** Hooks in priority order, then sinks: every run event goes to each. */
function eventBus(root: Container, sinks: readonly Sink[]): (e: RunEvent) => Promise<void> {
  const hooks = (root.isBound(TOKENS.Hook) ? root.getAll<Hook>(TOKENS.Hook) : []).sort((a, b) => a.priority - b.priority);
  return async (e) => {
    for (const h of hooks) await h.on(e);
    for (const s of sinks) await s.write(e);
  };
}

async function runLocked(recipe: Recipe, o: RunOptions): Promise<RunResult> {
  const { log } = o;
  if (!recipe.student || recipe.stages.length === 0) throw new RunError('nothing to train: the recipe needs `student:` and `stages:` (use `facedistill eval` to evaluate a teacher)');
  const { dir, resuming, moveAside } = await prepareRunDir(recipe, o, log);
  const t0 = performance.now();
  const backend = await selectBackend(recipe.shape.backend, log);
  const disposables: { dispose(): void }[] = [];
  const metrics = new MetricsJsonlSink(path.join(dir, 'metrics.jsonl'));
  const sinks: Sink[] = [metrics, new ProgressSink(o.progress ?? process.stderr.isTTY === true), ...(o.root.isBound(TOKENS.Sink) ? o.root.getAll<Sink>(TOKENS.Sink) : [])];
  const emit = eventBus(o.root, sinks);
  let manifest: RunManifest | undefined;
  try {
    const ctx = buildContext(recipe, dir, log);
    // Everything that reads the user's files is built first: a bad model, folder or pairs list is refused before a write.
    const teacher = await preflight(recipe, ['teacher'], () => build(recipe.teacher, ctx));
    disposables.push(teacher);
    const student = await preflight(recipe, ['student'], () => build(recipe.student!, ctx));
    disposables.push(student);
    log.info(`teacher: ${teacher.name} (${teacher.paramCount.toLocaleString('en-US')} params, ${teacher.embeddingDim}-D) · student: ${student.name} (${student.paramCount.toLocaleString('en-US')} params, ${student.embeddingDim}-D)`);

    // The pairs are read here (a bad list is refused before training) and evaluated at the end; with eval.every their images are kept too.
    const ev = recipe.shape.eval;
    const evalSource = recipe.evalPairs ? new MemoPairSource(await preflight(recipe, ['eval', 'pairs'], () => build(recipe.evalPairs!, ctx)), ev?.every !== undefined) : undefined;
    if (evalSource) {
      disposables.push(evalSource);
      await preflight(recipe, ['eval', 'pairs'], () => evalSource.init());
    }

    const checkpoints = new CheckpointStore(path.join(dir, 'checkpoints'));
    const latest = resuming ? await checkpoints.latest((e) => log.warn(`${e.message}: skipped, resuming from an earlier checkpoint`)) : undefined;
    if (latest && latest.state.recipeHash !== recipe.hash) throw new RunError('the latest checkpoint belongs to a different recipe; use --fresh');

    // The training data of every stage still to run, read now too; stage i's source is taken by setupStage(i).
    let sharedData: DataSource | undefined;
    const inited = new Map<DataSource, DataSourceInfo>();
    const prebuilt = new Map<number, DataSource>();
    const sharedSource = async (): Promise<DataSource> => {
      if (!sharedData) { sharedData = await build(recipe.data!, buildContext(recipe, dir, log, 1)); disposables.push(sharedData); }
      return sharedData;
    };
    for (let i = latest?.state.stageIndex ?? 0; i < recipe.stages.length; i++) {
      const stage = recipe.stages[i]!;
      const at = stage.data ? ['stages', i, 'data'] : ['data'];
      const data = await preflight(recipe, at, async () => {
        if (!stage.data) return sharedSource();
        const d = await build(stage.data, buildContext(recipe, dir, log, 1000 * (i + 1)));
        disposables.push(d);
        return d;
      });
      if (!inited.has(data)) inited.set(data, await preflight(recipe, at, () => data.init()));
      prebuilt.set(i, data);
    }

    // From here on the run folder is written.
    if (moveAside) await moveAside();
    await ensureDir(dir);
    if (latest) {
      const torn = await metrics.truncateAfter(latest.state.stageIndex, recipe.stages.map((s) => s.recipe.name), latest.state.step);
      if (torn > 0) log.warn(`metrics.jsonl: dropped ${torn} line(s) that were not JSON (a write cut short)`);
      log.info(`resuming from checkpoint ${latest.state.stage} step ${latest.state.step}`);
    } else {
      await writeFileAtomic(path.join(dir, 'metrics.jsonl'), '');
    }
    manifest = new RunManifest(dir, recipe, backend, teacher, student);
    await manifest.write();
    await emit({ type: 'run-start', run: recipe.shape.name, dir, backend: backend.name });

    const dataInfos: DataSourceInfo[] = [];
    const stageRows: StageRow[] = [];
    const lastTerms: Record<string, Record<string, number>> = {};
    sinks.push({ write: (e) => { if (e.type === 'step') lastTerms[e.stage] = { ...e.terms }; }, close: async () => {} });
    const handOff = new HandOffStore(dir, recipe, disposables);

    /** Data, teacher and an initialised strategy for stage i (training it, or rebuilding its output). */
    const setupStage = async (i: number) => {
      const stage = recipe.stages[i]!;
      const sctx = buildContext(recipe, dir, log, 1000 * (i + 1), handOff.stageOutput);
      let data = prebuilt.get(i);
      prebuilt.delete(i);
      if (!data && stage.data) { data = await build(stage.data, sctx); disposables.push(data); }
      data ??= await sharedSource();
      // A source shared by several stages (or rebuilt for a hand-off) is read once: init() is not required to be idempotent.
      let info = inited.get(data);
      if (!info) { info = await data.init(); inited.set(data, info); }
      const stageTeacher = stage.teacher ? await build(stage.teacher, sctx) : teacher;
      if (stageTeacher !== teacher) disposables.push(stageTeacher);
      const strategy = await build(stage.strategy, sctx);
      await strategy.init({ student, teacher: stageTeacher, data, rng: new Rng(sctx.seed + 7), seed: sctx.seed + 11, images: info.images, ...(info.identities !== undefined ? { classes: info.identities } : {}) });
      return { stage, sctx, data, info, stageTeacher, strategy };
    };
    handOff.rebuild = setupStage;

    for (const [i] of recipe.stages.entries()) {
      if (latest && i < latest.state.stageIndex) continue; // finished; weights come with the later checkpoint
      const { stage, sctx, data, info, stageTeacher, strategy } = await setupStage(i);
      if (info.skipped.length > 0) log.warn(`${info.name}: skipped ${info.skipped.length} unreadable file(s): ${info.skipped.slice(0, 3).map((s) => s.file).join(', ')}${info.skipped.length > 3 ? ', …' : ''}`);
      dataInfos.push(info);
      await manifest.stage(stage.recipe.name, info, stageTeacher !== teacher ? stageTeacher : undefined);
      const cache = new TeacherCache(stageTeacher, sctx.cacheDir, info.listHash);
      const reused = await cache.load();
      if (reused > 0) log.info(`teacher embeddings: reusing ${reused} cached rows (${path.relative(process.cwd(), cache.file!)})`);
      sinks.push({ write: async (e) => { if (e.type === 'checkpoint' || e.type === 'stage-end') await cache.save(); }, close: async () => {} });
      let kept = false;
      try {
        const res = await trainStage({
          stageIndex: i, stage, recipeHash: recipe.hash, student, teacher: stageTeacher, cache,
          data, strategy, seed: sctx.seed + 3, checkpoints, emit, log, beforeCheckpoint: () => metrics.durable(),
          ...(latest && latest.state.stageIndex === i ? { resumeFrom: latest } : {}),
          ...(evalSource && ev?.every ? {
            periodicEval: periodicEvaluation({
              every: ev.every, stage: stage.recipe.name, source: evalSource, student, teacher: stageTeacher, emit, log,
              settings: { flip: ev.flip, batchSize: ev.batchSize, far: ev.far, ...(ev.fairness ? { fairness: ev.fairness } : {}) },
              teacherCacheFile: (set) => teacherEvalCacheFile(recipe, stageTeacher, set),
            }),
          } : {}),
        });
        stageRows.push({ name: stage.recipe.name, strategy: stage.strategy.kind, steps: res.steps, batchSize: stage.recipe.batchSize, imagesPerSec: res.imagesPerSec, finalTerms: lastTerms[stage.recipe.name] ?? lastLoggedTerms(dir, stage.recipe.name) });
        kept = await handOff.save(i, student, strategy, stageTeacher, res);
        if (kept) disposables.push(strategy);
      } finally {
        if (!kept) strategy.dispose();
      }
    }

    // Export the student with its preprocessing contract: it loads back as a layers-model teacher.
    await saveLayersModel(student.model, path.join(dir, 'student'));
    await writeJsonAtomic(path.join(dir, 'student', 'contract.json'), student.contract);

    let evaluation: Awaited<ReturnType<typeof evaluateModels>> | undefined;
    if (recipe.evalPairs) {
      evaluation = await evaluateModels(recipe, dir, log, { teacher, student: { name: student.name, embed: async (x) => student.forward(x, false) } }, evalSource);
      await emit({ type: 'eval', model: teacher.name, metrics: evaluation.teacher as unknown as Record<string, unknown> });
      await writeJsonAtomic(path.join(dir, 'eval.json'), evaluation);
    }
    const wallSec = (performance.now() - t0) / 1000;
    await metrics.flush(); // metrics.jsonl complete before the curve is read from it
    await writeRunReport({ dir, recipe, backend, wallSec, teacher, student, ...(evaluation ? { evaluation } : {}), stages: stageRows, data: dataInfos });
    await emit({ type: 'run-end', run: recipe.shape.name, wallSec });
    await manifest.complete(wallSec);
    log.info(`done in ${wallSec.toFixed(1)} s: ${path.relative(process.cwd(), path.join(dir, 'report.md'))}`);
    return { dir, backend, ...(evaluation ? { teacher: evaluation.teacher, ...(evaluation.student ? { student: evaluation.student } : {}), ...(evaluation.agreement ? { agreement: evaluation.agreement } : {}) } : {}) };
  } catch (e) {
    // The run folder says how the run ended; a resume can still carry on from its last checkpoint.
    await manifest?.failed(e);
    throw e;
  } finally {
    for (const s of sinks) await s.close();
    for (const d of disposables.reverse()) d.dispose();
  }
}

/** Final loss terms of a stage finished in an earlier process (from metrics.jsonl). */
function lastLoggedTerms(dir: string, stage: string): Record<string, number> {
  try {
    const lines = readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const last = lines.filter((l) => l.stage === stage && l.event === undefined).at(-1) ?? {};
    return Object.fromEntries(Object.entries(last).filter(([k, v]) => typeof v === 'number' && !['step', 'lr', 'imagesPerSec', 'elapsedSec'].includes(k))) as Record<string, number>;
  } catch { return {}; }
}
