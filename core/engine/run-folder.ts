// The run folder: where a run lives (runsDir/name), whether a run starts, resumes or is
// refused, the lock that keeps one process per folder, and manifest.json.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { readFile, rename } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { RecipeError } from '../recipe/errors.js';
import { mergedRecipe, type Recipe } from '../recipe/validate.js';
import type { BackendChoice } from '../backends/select.js';
import type { DataSourceInfo } from '../interfaces/data-source.js';
import type { Student } from '../interfaces/student.js';
import type { Teacher } from '../interfaces/teacher.js';
import { acquireLock, LockHeldError } from '../util/folder-lock.js';
import { writeJsonAtomic } from '../util/fs.js';
import type { Logger } from '../util/logger.js';
import { RunError } from './errors.js';

const require = createRequire(import.meta.url);

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

const NO_WRITE: Record<string, string> = {
  EACCES: 'permission denied', EPERM: 'not permitted', EROFS: 'read-only file system', ENOTDIR: 'a part of the path is a file',
  EEXIST: 'a file is in the way', ENOSPC: 'no space left on the device', EDQUOT: 'disk quota exceeded',
};

/**
 * One process per run folder: a lock in `<runsDir>/.locks/<name>.lock` (outside the folder,
 * which --fresh moves aside), taken before anything is read or written.
 */
export async function lockRun(recipe: Recipe): Promise<() => Promise<void>> {
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

/**
 * manifest.json: the merged recipe with every default, its hash, package versions, git
 * revision, backend, teacher weight hashes, the data each stage read, and how the run ended
 * (running → complete, or failed with the error). Rewritten whole, atomically, at each change.
 */
export class RunManifest {
  private readonly value: Record<string, unknown> & { data: Record<string, DataSourceInfo>; teacherWeights: Record<string, string> };
  private written = false;

  constructor(private readonly dir: string, recipe: Recipe, backend: BackendChoice, teacher: Teacher, student: Student) {
    this.value = {
      run: recipe.shape.name, status: 'running', recipeFile: recipe.source.file, recipeHash: recipe.hash,
      recipe: mergedRecipe(recipe), packages: packageVersions(), gitRevision: gitRevision(),
      backend, teacherWeights: { [teacher.name]: teacher.weightsHash }, data: {},
      models: {
        teacher: { name: teacher.name, params: teacher.paramCount, dim: teacher.embeddingDim },
        student: { name: student.name, params: student.paramCount, dim: student.embeddingDim },
      },
      startedAt: new Date().toISOString(),
    };
  }

  private get file(): string { return path.join(this.dir, 'manifest.json'); }

  async write(): Promise<void> {
    await writeJsonAtomic(this.file, this.value);
    this.written = true;
  }

  /** The data a stage read, and its teacher where it is not the recipe's. */
  async stage(name: string, info: DataSourceInfo, teacher?: Teacher): Promise<void> {
    this.value.data[name] = info;
    if (teacher) this.value.teacherWeights[teacher.name] = teacher.weightsHash;
    await this.write();
  }

  async complete(wallSec: number): Promise<void> {
    await writeJsonAtomic(this.file, { ...this.value, status: 'complete', finishedAt: new Date().toISOString(), wallSec });
  }

  /** Records a failure, if the manifest was written at all (never fails itself: the error being reported matters more). */
  async failed(e: unknown): Promise<void> {
    if (!this.written) return;
    await writeJsonAtomic(this.file, { ...this.value, status: 'failed', error: (e as Error).message, failedAt: new Date().toISOString() }).catch(() => undefined);
  }
}
