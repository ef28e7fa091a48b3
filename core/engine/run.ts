import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { readFile, rename, rmdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { Container } from 'inversify';
import { selectBackend, type BackendChoice } from '../backends/select.js';
import type { BuildContext, Slot, SlotTypes } from '../di/contribution.js';
import { TOKENS } from '../di/tokens.js';
import type { ContributionRegistry } from '../di/registry.js';
import { agreement, embedImages, sharedEmbeddingCacheFile, verify, type AgreementResult, type PairSet, type VerificationResult } from '../eval/evaluate.js';
import type { RunEvent } from '../interfaces/events.js';
import type { DataSource, DataSourceInfo } from '../interfaces/data-source.js';
import type { Teacher } from '../interfaces/teacher.js';
import { saveLayersModel } from '../models/model-files.js';
import { mergedRecipe, type Recipe, type ResolvedComponent } from '../recipe/validate.js';
import { renderReport, type ModelRow } from '../report/markdown.js';
import { ensureDir, writeFileAtomic, writeJsonAtomic } from '../util/fs.js';
import type { Logger } from '../util/logger.js';
import { CheckpointStore, toNamedArrays } from './checkpoint.js';
import { assignVariables } from './trainer.js';
import { loadLayersTeacher } from '../models/layers-model-teacher.js';
import type { Strategy } from '../interfaces/strategy.js';
import { RunError } from './errors.js';
import { formatPath, RecipeError } from '../recipe/errors.js';
import { MetricsJsonlSink, ProgressSink } from './sinks.js';
import { TeacherCache } from './teacher-cache.js';
import { Rng } from '../util/rng.js';
import { hashJson } from '../util/hash.js';
import { trainStage } from './trainer.js';
import type { Hook } from '../interfaces/hook.js';
import type { Sink } from '../interfaces/sink.js';
import type { PairSource } from '../interfaces/pair-source.js';
import { MemoPairSource } from '../eval/memo-pairs.js';
import { periodicEvaluation } from './periodic-eval.js';
import { curveFromMetrics, learningCurveSvg } from '../report/learning-curve.js';
import { acquireLock, LockHeldError } from '../util/folder-lock.js';

const require = createRequire(import.meta.url);

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

function packageVersions(): Record<string, string> {
  const out: Record<string, string> = { node: process.version };
  for (const p of ['@tensorflow/tfjs', '@tensorflow/tfjs-backend-wasm', '@vladmandic/face-api', 'inversify', 'zod', 'sharp', 'yaml']) {
    try { out[p] = (JSON.parse(readFileSync(require.resolve(`${p}/package.json`), 'utf8')) as { version: string }).version; } catch { /* absent */ }
  }
  try { out.facedistill = (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version; } catch { /* not built in place */ }
  return out;
}

function gitRevision(): string | null {
  try { return execFileSync('git', ['rev-parse', 'HEAD'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim(); } catch { return null; }
}

export function runDirOf(recipe: Recipe): string {
  return path.resolve(recipe.shape.runsDir, recipe.shape.name);
}

/** What a run folder says about itself. */
async function readManifest(dir: string): Promise<{ recipeHash: string; status: string } | undefined> {
  const f = path.join(dir, 'manifest.json');
  return existsSync(f) ? (JSON.parse(await readFile(f, 'utf8')) as { recipeHash: string; status: string }) : undefined;
}

/**
 * Decides whether a run starts, resumes or refuses; reads only. With --fresh over an existing
 * run, `moveAside` is what the caller does once the recipe's components are known to build.
 */
export async function prepareRunDir(recipe: Recipe, o: { resume?: boolean; fresh?: boolean }, log: Logger): Promise<{ dir: string; resuming: boolean; moveAside?: () => Promise<void> }> {
  const dir = runDirOf(recipe);
  const m = await readManifest(dir);
  if (!m) {
    if (o.resume && !existsSync(dir)) throw new RunError(`--resume: no run folder at ${dir}`);
    return { dir, resuming: false };
  }
  if (o.fresh) {
    return {
      dir, resuming: false,
      moveAside: async () => {
        const aside = `${dir}.prev-${new Date().toISOString().replace(/[:.]/g, '-')}`;
        await rename(dir, aside);
        log.info(`--fresh: moved the previous run to ${aside}`);
      },
    };
  }
  if (m.recipeHash !== recipe.hash) {
    throw new RunError(`${dir} holds a run of a different recipe (hash ${m.recipeHash.slice(0, 12)} ≠ ${recipe.hash.slice(0, 12)}); use another name:, or --fresh to move the old run aside`);
  }
  if (!o.resume) log.info(`${dir} holds an unfinished or finished run of this recipe: continuing it (finished stages are not re-run)`);
  return { dir, resuming: true };
}

/**
 * Runs one step of setting a run up that reads the user's files (a model, a data folder, a
 * pairs list). What fails there is the recipe's problem: a RecipeError located at the key
 * that named the component, so the CLI exits 2 before the run folder is touched.
 */
async function preflight<T>(recipe: Recipe, at: (string | number)[], f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (e instanceof RecipeError) throw e;
    throw new RecipeError(recipe.source.locate(at), formatPath(at), (e as Error).message.split('\n')[0]!);
  }
}

/** Builds a component from its resolved recipe entry. */
export async function build<S extends Slot>(c: ResolvedComponent<S>, ctx: BuildContext): Promise<SlotTypes[S]> {
  const { kind: _k, ...options } = c.options;
  return c.contribution.create(options as never, ctx) as Promise<SlotTypes[S]>;
}

/** The shared cache folder of a recipe: `cacheDir:`, else `<runsDir>/.cache`. */
export function cacheDirOf(recipe: Recipe): string {
  return path.resolve(recipe.shape.cacheDir ?? path.join(recipe.shape.runsDir, '.cache'));
}

export function buildContext(recipe: Recipe, dir: string, log: Logger, seedOffset = 0, stageOutput?: BuildContext['stageOutput']): BuildContext {
  return contextFor(recipe.registry, { seed: recipe.shape.seed + seedOffset, runDir: dir, log, cacheDir: cacheDirOf(recipe), ...(stageOutput ? { stageOutput } : {}) });
}

/** A BuildContext whose `build` resolves nested components through the registry. */
export function contextFor(registry: ContributionRegistry, o: { seed: number; runDir: string; log: Logger; cacheDir: string; stageOutput?: BuildContext['stageOutput'] }): BuildContext {
  const ctx: BuildContext = {
    ...o,
    resolvePath: (p) => path.resolve(p),
    async build(slot, options) {
      const c = registry.find(slot, options.kind);
      if (!c) throw new RunError(`no ${slot} kind "${options.kind}" is registered; known: ${registry.kinds(slot).join(', ')}`);
      const { kind: _k, ...rest } = options;
      // Recipe-validated options arrive complete; programmatic ones get their defaults here.
      const parsed = c.options.safeParse(rest);
      if (!parsed.success) throw new RunError(`${slot} kind "${options.kind}": ${parsed.error.issues.map((i) => `${i.path.join('.') || '(options)'}: ${i.message}`).join('; ')}`);
      return c.create(parsed.data as never, ctx) as never;
    },
  };
  return ctx;
}

/** Evaluates teacher (and student) on the recipe's pairs; embeddings cached in the run folder. */
export async function evaluateModels(recipe: Recipe, dir: string, log: Logger, models: { teacher: Teacher; student?: { readonly name: string; embed: (x: tf.Tensor4D) => Promise<tf.Tensor2D> } }, given?: PairSource): Promise<{ teacher: VerificationResult; student?: VerificationResult; agreement?: AgreementResult }> {
  const ev = recipe.shape.eval!;
  // A source given by the caller (the one periodic evaluation read) stays the caller's to dispose.
  const source = given ?? await build(recipe.evalPairs!, buildContext(recipe, dir, log));
  try {
    const init = await source.init();
    const set: PairSet = { source, ...init };
    const settings = { flip: ev.flip, batchSize: ev.batchSize, far: ev.far, ...(ev.fairness ? { fairness: ev.fairness } : {}) };
    log.info(`eval: ${set.pairs.length} pairs, ${set.images.length} images — ${source.protocol}`);
    const progress = (what: string) => {
      let next = 0.2;
      return (done: number, total: number) => { if (done / total >= next) { log.info(`eval: ${what} ${done}/${total} images`); next += 0.2; } };
    };
    const te = await embedImages(set, (x) => models.teacher.embed(x), settings, teacherEvalCacheFile(recipe, models.teacher, set), models.teacher.weightsHash, progress(models.teacher.name));
    const tv = verify(set, te.table, settings, te.seconds);
    log.info(`eval: teacher ${models.teacher.name}: accuracy ${(100 * tv.accuracy).toFixed(2)} ± ${(100 * tv.std).toFixed(2)} %`);
    if (!models.student) return { teacher: strip(tv) };
    const student = models.student;
    const se = await embedImages(set, (x) => student.embed(x), settings, undefined, '', progress(student.name));
    const sv = verify(set, se.table, settings, se.seconds);
    log.info(`eval: student ${student.name}: accuracy ${(100 * sv.accuracy).toFixed(2)} ± ${(100 * sv.std).toFixed(2)} %`);
    const ag = agreement({ table: te.table, dist: tv.dist, predictions: tv.predictions }, { table: se.table, dist: sv.dist, predictions: sv.predictions }, set.images);
    return { teacher: strip(tv), student: strip(sv), agreement: ag };
  } finally {
    if (!given) source.dispose();
  }
}

/** Where a teacher's embeddings of the recipe's pair set are cached, shared by runs and cells. */
function teacherEvalCacheFile(recipe: Recipe, teacher: Teacher, set: PairSet): string {
  return sharedEmbeddingCacheFile(cacheDirOf(recipe), `teacher-${teacher.name}`, hashJson([set.listHash, teacher.weightsHash, recipe.shape.eval!.flip]));
}

function strip(v: VerificationResult & { dist?: unknown; predictions?: unknown }): VerificationResult {
  const { dist: _d, predictions: _p, ...rest } = v;
  return rest;
}

/** Runs a recipe end to end: stages → export → evaluation → report. */
export async function runRecipe(recipe: Recipe, o: RunOptions): Promise<RunResult> {
  const { log } = o;
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

/**
 * One process per run folder: a lock in `<runsDir>/.locks/<name>.lock` (outside the folder,
 * which --fresh moves aside), taken before anything is read or written.
 */
async function lockRun(recipe: Recipe): Promise<() => Promise<void>> {
  const file = path.join(path.resolve(recipe.shape.runsDir), '.locks', `${recipe.shape.name}.lock`);
  try {
    return await acquireLock(file, `facedistill run ${recipe.shape.name}`);
  } catch (e) {
    if (e instanceof LockHeldError) throw new RunError(`${runDirOf(recipe)} is in use: ${e.message}. Wait for that run to end (or stop it) and run again; a lock left by a process that died is taken over by itself`);
    const code = (e as NodeJS.ErrnoException).code;
    if (code && ['EACCES', 'EPERM', 'EROFS', 'ENOTDIR', 'EEXIST', 'ENOSPC', 'EDQUOT'].includes(code)) {
      // The first write of a run: a runs folder that cannot be written is a recipe problem, found before anything else.
      throw new RecipeError(recipe.source.locate(['runsDir']), 'runsDir', `cannot write under ${path.resolve(recipe.shape.runsDir)} (${code}: ${NO_WRITE[code] ?? 'refused'})`);
    }
    throw e;
  }
}

const NO_WRITE: Record<string, string> = {
  EACCES: 'permission denied', EPERM: 'not permitted', EROFS: 'read-only file system', ENOTDIR: 'a part of the path is a file',
  EEXIST: 'a file is in the way', ENOSPC: 'no space left on the device', EDQUOT: 'disk quota exceeded',
};

async function runLocked(recipe: Recipe, o: RunOptions): Promise<RunResult> {
  const { log } = o;
  if (!recipe.student || recipe.stages.length === 0) throw new RunError('nothing to train: the recipe needs `student:` and `stages:` (use `facedistill eval` to evaluate a teacher)');
  const { dir, resuming, moveAside } = await prepareRunDir(recipe, o, log);
  const t0 = performance.now();
  const backend = await selectBackend(recipe.shape.backend, log);
  const disposables: { dispose(): void }[] = [];
  const sinks: Sink[] = [];
  let manifestWritten: Record<string, unknown> | undefined;
  try {
    const ctx = buildContext(recipe, dir, log);
    const hooks = (o.root.isBound(TOKENS.Hook) ? o.root.getAll<Hook>(TOKENS.Hook) : []).sort((a, b) => a.priority - b.priority);
    const metrics = new MetricsJsonlSink(path.join(dir, 'metrics.jsonl'));
    sinks.push(metrics, new ProgressSink(o.progress ?? process.stderr.isTTY === true), ...(o.root.isBound(TOKENS.Sink) ? o.root.getAll<Sink>(TOKENS.Sink) : []));
    const emit = async (e: RunEvent) => {
      for (const h of hooks) await h.on(e);
      for (const s of sinks) await s.write(e);
    };

    // Everything that reads the user's files is built first: a bad model, folder or pairs list is refused before a write.
    const teacher = await preflight(recipe, ['teacher'], () => build(recipe.teacher, ctx));
    disposables.push(teacher);
    const student = await preflight(recipe, ['student'], () => build(recipe.student!, ctx));
    disposables.push(student);
    log.info(`teacher: ${teacher.name} (${teacher.paramCount.toLocaleString('en-US')} params, ${teacher.embeddingDim}-D) · student: ${student.name} (${student.paramCount.toLocaleString('en-US')} params, ${student.embeddingDim}-D)`);

    const ev = recipe.shape.eval;
    // Evaluation during training reads the pairs once and keeps them; the final evaluation uses the same images.
    // Read once here (a bad pairs list is refused before training), evaluated at the end; with eval.every its images are kept too.
    const evalSource = recipe.evalPairs ? new MemoPairSource(await preflight(recipe, ['eval', 'pairs'], () => build(recipe.evalPairs!, ctx)), ev?.every !== undefined) : undefined;
    if (evalSource) {
      disposables.push(evalSource);
      await preflight(recipe, ['eval', 'pairs'], () => evalSource.init());
    }
    const evalSettings = ev ? { flip: ev.flip, batchSize: ev.batchSize, far: ev.far, ...(ev.fairness ? { fairness: ev.fairness } : {}) } : undefined;

    const checkpoints = new CheckpointStore(path.join(dir, 'checkpoints'));
    const latest = resuming ? await checkpoints.latest((e) => log.warn(`${e.message}: skipped, resuming from an earlier checkpoint`)) : undefined;
    if (latest && latest.state.recipeHash !== recipe.hash) throw new RunError('the latest checkpoint belongs to a different recipe; use --fresh');
    const stageNames = recipe.stages.map((s) => s.recipe.name);

    // The training data of every stage still to run, read now (see above); stage i's source is taken by setupStage(i).
    let sharedData: DataSource | undefined;
    const inited = new Map<DataSource, DataSourceInfo>();
    const prebuilt = new Map<number, DataSource>();
    for (let i = latest?.state.stageIndex ?? 0; i < recipe.stages.length; i++) {
      const stage = recipe.stages[i]!;
      const at = stage.data ? ['stages', i, 'data'] : ['data'];
      let data: DataSource;
      if (stage.data) {
        data = await preflight(recipe, at, () => build(stage.data!, buildContext(recipe, dir, log, 1000 * (i + 1))));
        disposables.push(data);
      } else {
        if (!sharedData) { const d = await preflight(recipe, at, () => build(recipe.data!, buildContext(recipe, dir, log, 1))); sharedData = d; disposables.push(d); }
        data = sharedData;
      }
      if (!inited.has(data)) inited.set(data, await preflight(recipe, at, () => data.init()));
      prebuilt.set(i, data);
    }

    // From here on the run folder is written.
    if (moveAside) await moveAside();
    await ensureDir(dir);
    if (latest) {
      const torn = await metrics.truncateAfter(latest.state.stageIndex, stageNames, latest.state.step);
      if (torn > 0) log.warn(`metrics.jsonl: dropped ${torn} line(s) that were not JSON (a write cut short)`);
      log.info(`resuming from checkpoint ${latest.state.stage} step ${latest.state.step}`);
    } else {
      await writeFileAtomic(path.join(dir, 'metrics.jsonl'), '');
    }
    const manifest = {
      run: recipe.shape.name, status: 'running', recipeFile: recipe.source.file, recipeHash: recipe.hash,
      recipe: mergedRecipe(recipe), packages: packageVersions(), gitRevision: gitRevision(),
      backend, teacherWeights: { [teacher.name]: teacher.weightsHash }, data: {} as Record<string, DataSourceInfo>,
      models: {
        teacher: { name: teacher.name, params: teacher.paramCount, dim: teacher.embeddingDim },
        student: { name: student.name, params: student.paramCount, dim: student.embeddingDim },
      },
      startedAt: new Date().toISOString(),
    };
    await writeJsonAtomic(path.join(dir, 'manifest.json'), manifest);
    manifestWritten = manifest;
    await emit({ type: 'run-start', run: recipe.shape.name, dir, backend: backend.name });

    const dataInfos: DataSourceInfo[] = [];
    const stageRows: { name: string; strategy: string; steps: number; batchSize: number; imagesPerSec: number; finalTerms: Record<string, number> }[] = [];
    const lastTerms: Record<string, Record<string, number>> = {};
    sinks.push({ write: (e) => { if (e.type === 'step') lastTerms[e.stage] = { ...e.terms }; }, close: async () => {} });

    const stageDir = (name: string) => path.join(dir, 'stages', name);
    const outputs = new Map<string, Teacher>();
    let stageOutput: BuildContext['stageOutput'];

    /** Data, teacher and an initialised strategy for stage i (training it, or rebuilding its output). */
    const setupStage = async (i: number) => {
      const stage = recipe.stages[i]!;
      const sctx = buildContext(recipe, dir, log, 1000 * (i + 1), stageOutput);
      let data: DataSource;
      const ready = prebuilt.get(i);
      if (ready) {
        data = ready;
        prebuilt.delete(i);
      } else if (stage.data) {
        data = await build(stage.data, sctx);
        disposables.push(data);
      } else {
        if (!sharedData) { sharedData = await build(recipe.data!, buildContext(recipe, dir, log, 1)); disposables.push(sharedData); }
        data = sharedData;
      }
      // A source shared by several stages (or rebuilt for a hand-off) is read once: init() is
      // not required to be idempotent.
      let info = inited.get(data);
      if (!info) { info = await data.init(); inited.set(data, info); }
      const stageTeacher = stage.teacher ? await build(stage.teacher, sctx) : teacher;
      if (stageTeacher !== teacher) disposables.push(stageTeacher);
      const strategy = await build(stage.strategy, sctx);
      await strategy.init({ student, teacher: stageTeacher, data, rng: new Rng(sctx.seed + 7), seed: sctx.seed + 11, images: info.images, ...(info.identities !== undefined ? { classes: info.identities } : {}) });
      return { stage, sctx, data, info, stageTeacher, strategy };
    };

    /** What stage i hands on: its strategy's teacher (kept alive), else a frozen copy of the student. */
    const publish = async (i: number, strategy: Strategy, stageTeacher: Teacher): Promise<boolean> => {
      const name = recipe.stages[i]!.recipe.name;
      if (strategy.stageTeacher) { outputs.set(name, strategy.stageTeacher(stageTeacher)); return true; }
      return false;
    };

    stageOutput = async (name, use) => {
      const i = recipe.stages.findIndex((s) => s.recipe.name === name);
      if (i < 0) throw new RunError(`from-stage: no stage named "${name}"`);
      const key = use === 'student' ? `${name}#student` : name;
      const have = outputs.get(key);
      if (have) return have;
      if (use === 'auto') {
        // Finished in an earlier process: rebuild the strategy and restore what it trained.
        const bundle = await new CheckpointStore(path.join(stageDir(name), 'strategy')).latest();
        if (bundle) {
          const s = await setupStage(i);
          assignVariables(s.strategy.variables(), bundle.tensors.strategy);
          s.strategy.restore(bundle.state.strategy);
          disposables.push(s.strategy);
          if (await publish(i, s.strategy, s.stageTeacher)) return outputs.get(name)!;
        }
      }
      const file = path.join(stageDir(name), 'student', 'model.json');
      if (!existsSync(file)) throw new RunError(`from-stage: stage "${name}" has not produced a student yet (${file} is missing)`);
      const t = await loadLayersTeacher(file, `from-stage:${name}`);
      disposables.push(t);
      outputs.set(key, t);
      return t;
    };

    for (const [i] of recipe.stages.entries()) {
      if (latest && i < latest.state.stageIndex) continue; // finished; weights come with the later checkpoint
      const { stage, sctx, data, info, stageTeacher, strategy } = await setupStage(i);
      if (info.skipped.length > 0) log.warn(`${info.name}: skipped ${info.skipped.length} unreadable file(s): ${info.skipped.slice(0, 3).map((s) => s.file).join(', ')}${info.skipped.length > 3 ? ', …' : ''}`);
      dataInfos.push(info);
      manifest.data[stage.recipe.name] = info;
      if (stageTeacher !== teacher) manifest.teacherWeights[stageTeacher.name] = stageTeacher.weightsHash;
      await writeJsonAtomic(path.join(dir, 'manifest.json'), manifest);
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
              every: ev.every, stage: stage.recipe.name, source: evalSource, settings: evalSettings!, student, teacher: stageTeacher,
              teacherCacheFile: (set) => teacherEvalCacheFile(recipe, stageTeacher, set), emit, log,
            }),
          } : {}),
        });
        stageRows.push({ name: stage.recipe.name, strategy: stage.strategy.kind, steps: res.steps, batchSize: stage.recipe.batchSize, imagesPerSec: res.imagesPerSec, finalTerms: lastTerms[stage.recipe.name] ?? lastLoggedTerms(dir, stage.recipe.name) });
        // Hand-off for later stages: the student as it is now, and what the strategy trained.
        await saveLayersModel(student.model, path.join(stageDir(stage.recipe.name), 'student'));
        await writeJsonAtomic(path.join(stageDir(stage.recipe.name), 'student', 'contract.json'), student.contract);
        if (strategy.stageTeacher) {
          await new CheckpointStore(path.join(stageDir(stage.recipe.name), 'strategy'), 1).save({
            state: { recipeHash: recipe.hash, stageIndex: i, stage: stage.recipe.name, step: res.steps, lrScale: 1, rng: null, data: null, strategy: strategy.state(), elapsedSec: res.elapsedSec },
            tensors: { student: [], optimizer: [], strategy: await toNamedArrays(strategy.variables().map((v) => ({ name: v.name, tensor: v }))) },
          });
          kept = await publish(i, strategy, stageTeacher);
          if (kept) disposables.push(strategy);
        }
      } finally {
        if (!kept) strategy.dispose();
      }
    }

    // Export the student with its preprocessing contract: it loads back as a layers-model teacher.
    await saveLayersModel(student.model, path.join(dir, 'student'));
    await writeJsonAtomic(path.join(dir, 'student', 'contract.json'), student.contract);

    let evalRes: Awaited<ReturnType<typeof evaluateModels>> | undefined;
    if (recipe.evalPairs) {
      evalRes = await evaluateModels(recipe, dir, log, { teacher, student: { name: student.name, embed: async (x) => student.forward(x, false) } }, evalSource);
      await emit({ type: 'eval', model: teacher.name, metrics: evalRes.teacher as unknown as Record<string, unknown> });
      await writeJsonAtomic(path.join(dir, 'eval.json'), evalRes);
    }
    const wallSec = (performance.now() - t0) / 1000;
    await metrics.flush(); // metrics.jsonl complete before the curve is read from it
    const curve = curveFromMetrics(path.join(dir, 'metrics.jsonl'));
    const svg = learningCurveSvg(curve, recipe.shape.name);
    if (svg) await writeFileAtomic(path.join(dir, 'learning-curve.svg'), svg);
    const models: ModelRow[] = [
      { role: 'teacher', name: teacher.name, params: teacher.paramCount, dim: teacher.embeddingDim, ...(evalRes ? { result: evalRes.teacher } : {}) },
      { role: 'student', name: student.name, params: student.paramCount, dim: student.embeddingDim, ...(evalRes?.student ? { result: evalRes.student } : {}) },
    ];
    await writeFileAtomic(path.join(dir, 'report.md'), renderReport({
      run: recipe.shape.name, recipeFile: recipe.source.file, backend: backend.name, backendReason: backend.reason, wallSec,
      models, ...(evalRes?.agreement ? { agreement: evalRes.agreement } : {}), stages: stageRows, data: dataInfos,
      ...(curve.length > 0 ? { curve } : {}),
    }));
    await emit({ type: 'run-end', run: recipe.shape.name, wallSec });
    await writeJsonAtomic(path.join(dir, 'manifest.json'), { ...manifest, status: 'complete', finishedAt: new Date().toISOString(), wallSec });
    log.info(`done in ${wallSec.toFixed(1)} s: ${path.relative(process.cwd(), path.join(dir, 'report.md'))}`);
    return { dir, backend, ...(evalRes ? { teacher: evalRes.teacher, ...(evalRes.student ? { student: evalRes.student } : {}), ...(evalRes.agreement ? { agreement: evalRes.agreement } : {}) } : {}) };
  } catch (e) {
    // The run folder says how the run ended; a resume can still carry on from its last checkpoint.
    if (manifestWritten) {
      await writeJsonAtomic(path.join(dir, 'manifest.json'), { ...manifestWritten, status: 'failed', error: (e as Error).message, failedAt: new Date().toISOString() }).catch(() => undefined);
    }
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
