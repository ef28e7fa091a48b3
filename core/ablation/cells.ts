// Expands an ablation into cells (one combination of levels) and runs (a cell at one seed),
// and validates every run's merged recipe before anything is written.
import path from 'node:path';
import type { Container } from 'inversify';
import { RecipeError } from '../recipe/errors.js';
import { loadRecipe } from '../recipe/load.js';
import type { Recipe } from '../recipe/validate.js';
import type { AblationLevel, AblationSpec } from './spec.js';

export interface AblationCell {
  /** The cell's levels joined with "_" in factor order, e.g. `cosine_wide`. */
  readonly id: string;
  /** factor → level. */
  readonly levels: Readonly<Record<string, string>>;
  readonly isBaseline: boolean;
  /** The base recipe, or the one a level names. */
  readonly recipeFile: string;
  /** The ablation's common overrides, then each level's, in factor order. */
  readonly sets: AblationLevel['sets'];
}

export interface AblationRun {
  readonly cell: AblationCell;
  readonly seed: number;
  /** Run name and folder name: `<cell id>_s<seed>`. */
  readonly name: string;
  /** The validated merged recipe; its hash says whether a finished run is this run. */
  readonly recipe: Recipe;
  /** Run folder `<runsDir>/<ablation>/cells/<name>/`. */
  readonly dir: string;
  /** Where the merged recipe is written for the child process. */
  readonly recipeOut: string;
  /** Child process output. */
  readonly logFile: string;
}

export interface AblationLayout {
  /** `<runsDir>/<ablation>/`: the report, results and state. */
  readonly root: string;
  readonly cellsDir: string;
  readonly recipesDir: string;
  /** One cache folder for every cell (and every ordinary run in the same runsDir). */
  readonly cacheDir: string;
}

export function layoutOf(spec: AblationSpec): AblationLayout {
  const root = path.resolve(spec.runsDir, spec.name);
  return { root, cellsDir: path.join(root, 'cells'), recipesDir: path.join(root, 'recipes'), cacheDir: path.resolve(spec.runsDir, '.cache') };
}

function overlaps(a: string, b: string): boolean {
  return a === b || a.startsWith(b + '.') || b.startsWith(a + '.');
}

function cellOf(spec: AblationSpec, levels: readonly AblationLevel[]): AblationCell {
  const recipes = levels.filter((l) => l.recipe !== undefined);
  if (recipes.length > 1) {
    throw new RecipeError(recipes[1]!.at, `factors.${recipes[1]!.factor}.${recipes[1]!.name}`,
      `this level names a recipe and so does level ${recipes[0]!.factor}.${recipes[0]!.name}; a cell can run one recipe only`);
  }
  for (const [i, l] of levels.entries()) {
    for (const s of l.sets) {
      for (const other of levels.slice(0, i)) {
        const clash = other.sets.find((o) => overlaps(o.key, s.key));
        if (clash) {
          throw new RecipeError(s.at, `factors.${l.factor}.${l.name}`,
            `sets ${s.key}, which level ${other.factor}.${other.name} also sets (${clash.key}): a recipe key belongs to one factor only`);
        }
      }
    }
  }
  const byFactor = Object.fromEntries(levels.map((l) => [l.factor, l.name]));
  return {
    id: levels.map((l) => l.name).join('_'),
    levels: byFactor,
    isBaseline: levels.every((l) => spec.baseline[l.factor] === l.name),
    recipeFile: recipes[0]?.recipe ?? spec.base,
    sets: [...spec.sets, ...levels.flatMap((l) => l.sets)],
  };
}

/** Cells in report order: the grid with the first factor slowest, or the baseline then one factor at a time. */
export function expandCells(spec: AblationSpec): readonly AblationCell[] {
  const baseLevel = (f: (typeof spec.factors)[number]) => f.levels.find((l) => l.name === spec.baseline[f.name])!;
  let combos: AblationLevel[][];
  if (spec.design === 'grid') {
    combos = spec.factors.reduce<AblationLevel[][]>((acc, f) => acc.flatMap((c) => f.levels.map((l) => [...c, l])), [[]]);
  } else {
    combos = [spec.factors.map(baseLevel)];
    for (const f of spec.factors) {
      for (const l of f.levels) if (l.name !== spec.baseline[f.name]) combos.push(spec.factors.map((g) => (g === f ? l : baseLevel(g))));
    }
  }
  return combos.map((c) => cellOf(spec, c));
}

/**
 * Every (cell, seed) run with its merged recipe validated in this process, so a bad override
 * fails before any child starts. An error in a level's override is located in the ablation
 * file; one in a recipe is located there and names the cell.
 */
export async function planRuns(spec: AblationSpec, rootFor: () => Container): Promise<{ layout: AblationLayout; cells: readonly AblationCell[]; runs: readonly AblationRun[] }> {
  const layout = layoutOf(spec);
  const cells = expandCells(spec);
  const runs: AblationRun[] = [];
  const runsDir = path.join(spec.runsDir, spec.name, 'cells');
  const cacheDir = path.join(spec.runsDir, '.cache');
  // Seed-major: a first complete table (every cell at the first seed) comes early.
  for (const seed of spec.seeds) {
    for (const cell of cells) {
      const name = `${cell.id}_s${seed}`;
      const own = [`name=${JSON.stringify(name)}`, `runsDir=${JSON.stringify(runsDir)}`, `cacheDir=${JSON.stringify(cacheDir)}`, `seed=${seed}`];
      let recipe: Recipe;
      try {
        recipe = await loadRecipe(cell.recipeFile, [...cell.sets.map((s) => s.set), ...own], rootFor());
      } catch (e) {
        if (!(e instanceof RecipeError)) throw e;
        const loc = e.location;
        const from = 'set' in loc ? cell.sets.find((s) => s.set === loc.set) : undefined;
        throw new RecipeError(from ? from.at : loc, e.keyPath, `${e.expected} (ablation ${spec.name}, cell ${cell.id}${from ? `, override ${from.key}` : ''})`, e.suggestion);
      }
      runs.push({
        cell, seed, name, recipe, dir: path.join(layout.cellsDir, name),
        recipeOut: path.join(layout.recipesDir, `${name}.yaml`), logFile: path.join(layout.cellsDir, `${name}.log`),
      });
    }
  }
  return { layout, cells, runs };
}
