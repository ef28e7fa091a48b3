// The ablation file: a base recipe, factors whose levels are recipe overrides (or another
// recipe), seeds, a baseline and a parallelism. Read with the recipe machinery (YAML with
// locations, one level of `extends:`, `--set`), so its errors are located the same way.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { RecipeError, formatPath } from '../recipe/errors.js';
import { nearest } from '../recipe/nearest.js';
import { readRecipeSource, type RecipeSource } from '../recipe/source.js';
import { parseOrThrow } from '../recipe/validate.js';

const runName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'letters, digits, ".", "_" or "-" (it names a folder)');
/** Level names join into cell names with "_", so they may not hold one; all-digit keys would reorder in YAML maps. */
const LEVEL_NAME = /^(?!\d+$)[A-Za-z0-9][A-Za-z0-9.-]*$/;
const FACTOR_NAME = /^[A-Za-z][A-Za-z0-9.-]*$/;
/** Keys the runner sets on every cell itself. */
const RESERVED = ['name', 'runsDir', 'cacheDir', 'seed'] as const;

const overrides = z.record(z.string(), z.unknown())
  .describe('recipe key paths (as for --set, e.g. stages.0.strategy.loss) → values; `recipe: <file>` runs another recipe for this level');

export const ablationSchema = z.strictObject({
  name: runName.describe('results go to <runsDir>/<name>/'),
  description: z.string().optional(),
  extends: z.string().optional().describe('another ablation file (one level) this one overrides, e.g. a short variant'),
  base: z.string().min(1).describe('base recipe, relative to this file'),
  runsDir: z.string().default('runs').describe('relative to the working directory, as in recipes'),
  set: overrides.default({}).describe('overrides applied to every cell before the levels\''),
  factors: z.record(z.string(), z.record(z.string(), overrides.nullable())).describe('factor → level → overrides (YAML order is kept)'),
  seeds: z.union([z.array(z.number().int().min(0)).min(1), z.number().int().min(1)]).default([0])
    .describe('recipe seeds every cell runs with (a count n means 0…n−1); paired differences pair runs by seed'),
  baseline: z.record(z.string(), z.string()).optional().describe('factor → level of the reference cell (default: every factor\'s first level)'),
  design: z.enum(['grid', 'one-at-a-time']).default('grid')
    .describe('grid: every combination of levels; one-at-a-time: the baseline plus each other level of one factor with the rest at baseline'),
  parallel: z.number().int().min(1).max(64).default(1).describe('cells run at once, each in its own process with its own backend'),
});

type Location = RecipeError['location'];

export interface AblationLevel {
  readonly factor: string;
  readonly name: string;
  /** Another recipe to run instead of the base (resolved against the ablation file's folder). */
  readonly recipe?: string;
  /** `key.path=value` overrides in --set syntax (values as JSON, which YAML reads back unchanged). */
  readonly sets: readonly { readonly key: string; readonly set: string; readonly at: Location }[];
  readonly at: Location;
}

export interface AblationFactor {
  readonly name: string;
  readonly levels: readonly AblationLevel[];
}

export interface AblationSpec {
  readonly file: string;
  readonly source: RecipeSource;
  readonly name: string;
  readonly description?: string;
  readonly base: string;
  readonly runsDir: string;
  /** Overrides applied to every cell (before the levels'). */
  readonly sets: AblationLevel['sets'];
  readonly factors: readonly AblationFactor[];
  readonly seeds: readonly number[];
  /** factor → level. */
  readonly baseline: Readonly<Record<string, string>>;
  readonly design: 'grid' | 'one-at-a-time';
  readonly parallel: number;
}

function toSets(value: Record<string, unknown>, p: readonly (string | number)[], src: RecipeSource, what: string): AblationLevel['sets'] {
  return Object.entries(value).filter(([k]) => k !== 'recipe').map(([key, v]) => {
    const at = src.locate([...p, key], true);
    if (!/^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$/.test(key)) throw new RecipeError(at, formatPath([...p, key]), `expected a recipe key path such as stages.0.steps, got "${key}"`);
    const head = key.split('.')[0]!;
    if ((RESERVED as readonly string[]).includes(head)) {
      throw new RecipeError(at, formatPath([...p, key]), `${what} cannot set "${head}": the ablation runner sets ${RESERVED.join(', ')} on every cell (use seeds: for seeds)`);
    }
    return { key, set: `${key}=${JSON.stringify(v)}`, at };
  });
}

/** Reads and checks an ablation file. Cell recipes are checked later, when the cells are expanded. */
export function readAblation(file: string, sets: readonly string[] = []): AblationSpec {
  if (!existsSync(file)) throw new RecipeError({ file }, '', 'ablation file not found');
  const src = readRecipeSource(file, sets);
  const v = parseOrThrow(ablationSchema, src.value, [], src);
  const dir = path.dirname(path.resolve(file));
  const factors = Object.entries(v.factors).map(([fname, levels]): AblationFactor => {
    const fp = ['factors', fname];
    if (!FACTOR_NAME.test(fname)) throw new RecipeError(src.locate(fp, true), formatPath(fp), `factor names are a letter then letters, digits, "." or "-", got "${fname}"`);
    const entries = Object.entries(levels);
    if (entries.length === 0) throw new RecipeError(src.locate(fp), formatPath(fp), 'a factor needs at least one level');
    return {
      name: fname,
      levels: entries.map(([lname, ov]): AblationLevel => {
        const lp = [...fp, lname];
        if (!LEVEL_NAME.test(lname)) {
          throw new RecipeError(src.locate(lp, true), formatPath(lp), `level names are letters, digits, "." or "-" (no "_": it joins levels into cell names; not all digits), got "${lname}"`);
        }
        const o = ov ?? {};
        if (o.recipe !== undefined && typeof o.recipe !== 'string') throw new RecipeError(src.locate([...lp, 'recipe']), formatPath([...lp, 'recipe']), 'expected the path of a recipe (string)');
        if (typeof o.recipe === 'string' && !existsSync(path.resolve(dir, o.recipe))) {
          throw new RecipeError(src.locate([...lp, 'recipe']), formatPath([...lp, 'recipe']), `recipe file not found: ${o.recipe} (resolved to ${path.resolve(dir, o.recipe)})`);
        }
        return {
          factor: fname, name: lname, at: src.locate(lp, true), sets: toSets(o, lp, src, `level ${fname}.${lname}`),
          ...(typeof o.recipe === 'string' ? { recipe: path.resolve(dir, o.recipe) } : {}),
        };
      }),
    };
  });
  if (factors.length === 0) throw new RecipeError(src.locate(['factors']), 'factors', 'an ablation needs at least one factor');

  if (!existsSync(path.resolve(dir, v.base))) throw new RecipeError(src.locate(['base']), 'base', `recipe file not found: ${v.base} (resolved to ${path.resolve(dir, v.base)})`);
  const seeds = typeof v.seeds === 'number' ? Array.from({ length: v.seeds }, (_, i) => i) : v.seeds;
  const dup = seeds.find((s, i) => seeds.indexOf(s) !== i);
  if (dup !== undefined) throw new RecipeError(src.locate(['seeds']), 'seeds', `seed ${dup} is listed twice`);

  const baseline: Record<string, string> = {};
  for (const f of factors) baseline[f.name] = f.levels[0]!.name;
  for (const [fname, lname] of Object.entries(v.baseline ?? {})) {
    const f = factors.find((x) => x.name === fname);
    const at = src.locate(['baseline', fname], true);
    if (!f) throw new RecipeError(at, `baseline.${fname}`, `unknown factor "${fname}"; factors: ${factors.map((x) => x.name).join(', ')}`, nearest(fname, factors.map((x) => x.name)));
    if (!f.levels.some((l) => l.name === lname)) {
      throw new RecipeError(src.locate(['baseline', fname]), `baseline.${fname}`, `unknown level "${lname}" of factor ${fname}; levels: ${f.levels.map((l) => l.name).join(', ')}`, nearest(lname, f.levels.map((l) => l.name)));
    }
    baseline[fname] = lname;
  }
  return {
    file, source: src, name: v.name, ...(v.description !== undefined ? { description: v.description } : {}),
    base: path.resolve(dir, v.base), runsDir: v.runsDir, sets: toSets(v.set, ['set'], src, 'set'),
    factors, seeds, baseline, design: v.design, parallel: v.parallel,
  };
}
