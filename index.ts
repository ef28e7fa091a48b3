// Package entry: the core API plus the built-in modules.
export * from './core/index.js';
export { builtinModules } from './builtins.js';
export { loadRecipe } from './core/recipe/load.js';
export { runRecipe, evaluateModels } from './core/engine/run.js';
export { selectBackend } from './core/backends/select.js';
