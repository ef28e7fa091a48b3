// Building a recipe's components: the BuildContext factories receive, and preflight, which
// turns a failure while reading the user's files into a located recipe error.
import path from 'node:path';
import type { BuildContext, Slot, SlotTypes } from '../di/contribution.js';
import type { ContributionRegistry } from '../di/registry.js';
import { formatPath, RecipeError } from '../recipe/errors.js';
import type { Recipe, ResolvedComponent } from '../recipe/validate.js';
import type { Logger } from '../util/logger.js';
import { RunError } from './errors.js';

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

/**
 * Runs one step of setting a run up that reads the user's files (a model, a data folder, a
 * pairs list). What fails there is the recipe's problem: a RecipeError located at the key
 * that named the component, so the CLI exits 2 before the run folder is touched.
 */
export async function preflight<T>(recipe: Recipe, at: (string | number)[], f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (e instanceof RecipeError) throw e;
    throw new RecipeError(recipe.source.locate(at), formatPath(at), (e as Error).message.split('\n')[0]!);
  }
}
