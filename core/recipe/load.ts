import type { Container } from 'inversify';
import { loadPlugins } from '../di/container.js';
import { ContributionRegistry } from '../di/registry.js';
import { readRecipeSource } from './source.js';
import { validateRecipe, type Recipe } from './validate.js';

/** Reads, merges, loads plugins and validates a recipe. Throws RecipeError on bad input. */
export async function loadRecipe(file: string, sets: readonly string[], root: Container): Promise<Recipe> {
  const src = readRecipeSource(file, sets);
  await loadPlugins(root, src);
  return validateRecipe(src, ContributionRegistry.fromContainer(root));
}
