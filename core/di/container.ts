import 'reflect-metadata';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Container, ContainerModule } from 'inversify';
import { RecipeError } from '../recipe/errors.js';
import type { Contribution } from './contribution.js';
import { TOKENS } from './tokens.js';
import type { RecipeSource } from '../recipe/source.js';

/** The root container: built-in modules are loaded exactly like plugins. */
export function createRootContainer(modules: readonly ContainerModule[]): Container {
  const c = new Container({ defaultScope: 'Singleton' });
  c.load(...modules);
  return c;
}

function isContainerModule(v: unknown): v is ContainerModule {
  return v instanceof ContainerModule || (typeof v === 'object' && v !== null && typeof (v as ContainerModule).load === 'function' && typeof (v as ContainerModule).id === 'number');
}

/** Plugin modules loaded into each container, so that naming a plugin twice loads it once. */
const loadedModules = new WeakMap<Container, Set<ContainerModule>>();

function contributionsOf(container: Container): Contribution[] {
  return container.isBound(TOKENS.Contribution) ? container.getAll<Contribution>(TOKENS.Contribution) : [];
}

/** Why a plugin module could not be loaded (the caller says where it was named). */
export class PluginError extends Error {}

/** Imports one plugin module (a path, relative to the working folder) and loads its ContainerModules; returns its absolute path. */
export async function importPlugin(container: Container, file: string): Promise<string> {
  const abs = path.resolve(file);
  if (!existsSync(abs)) throw new PluginError(`plugin file not found: ${file} (resolved to ${abs})`);
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(abs).href)) as Record<string, unknown>;
  } catch (e) {
    throw new PluginError(`plugin failed to load: ${(e as Error).message.split('\n')[0]}`);
  }
  const modules = Object.values(mod).filter(isContainerModule);
  if (modules.length === 0) throw new PluginError('plugin exports no ContainerModule (export one, e.g. `export default contributionModule(myStrategy)`)');
  // The same module file named again (a second recipe in one process): already loaded here.
  const done = loadedModules.get(container) ?? new Set<ContainerModule>();
  const fresh = modules.filter((m) => !done.has(m));
  if (fresh.length === 0) return abs;
  const before = new Set(contributionsOf(container).map((c) => `${c.slot}/${c.kind}`));
  try {
    container.load(...fresh);
  } catch (e) {
    throw new PluginError(`the plugin's ContainerModule failed while loading: ${(e as Error).message.split('\n')[0]}`);
  }
  const count = new Map<string, number>();
  for (const c of contributionsOf(container)) count.set(`${c.slot}/${c.kind}`, (count.get(`${c.slot}/${c.kind}`) ?? 0) + 1);
  const clash = [...count.entries()].find(([, n]) => n > 1);
  if (clash) {
    try { container.unload(...fresh); } catch { /* the error below says what matters */ }
    const [slot, kind] = clash[0].split('/');
    throw new PluginError(`it registers ${slot} kind "${kind}", which ${before.has(clash[0]) ? 'is already registered (built in or by an earlier plugin)' : 'it registers twice'}; give it another kind`);
  }
  for (const m of fresh) done.add(m);
  loadedModules.set(container, done);
  return abs;
}

/** Loads `plugins:` modules (each exports one or more ContainerModules) into the container. */
export async function loadPlugins(container: Container, src: RecipeSource): Promise<string[]> {
  const plugins = src.value.plugins;
  if (plugins === undefined) return [];
  if (!Array.isArray(plugins)) throw new RecipeError(src.locate(['plugins']), 'plugins', 'expected a list of module paths');
  const loaded: string[] = [];
  for (const [i, p] of plugins.entries()) {
    const at = src.locate(['plugins', i]);
    if (typeof p !== 'string') throw new RecipeError(at, `plugins[${i}]`, 'expected a module path (string)');
    try {
      loaded.push(await importPlugin(container, p));
    } catch (e) {
      if (e instanceof PluginError) throw new RecipeError(at, `plugins[${i}]`, e.message);
      throw e;
    }
  }
  return loaded;
}
