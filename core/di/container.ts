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
  const before = contributionsOf(container);
  try {
    container.load(...modules);
  } catch (e) {
    throw new PluginError(`the plugin's ContainerModule failed while loading: ${(e as Error).message.split('\n')[0]}`);
  }
  const added = contributionsOf(container).filter((c) => !before.includes(c));
  const taken = new Set(before.map((c) => `${c.slot}/${c.kind}`));
  const seen = new Set<string>();
  for (const c of added) {
    const id = `${c.slot}/${c.kind}`;
    if (taken.has(id) || seen.has(id)) {
      try { container.unload(...modules); } catch { /* the error below says what matters */ }
      throw new PluginError(`it registers ${c.slot} kind "${c.kind}", which ${taken.has(id) ? 'is already registered (built in or by an earlier plugin)' : 'it registers twice'}; give it another kind`);
    }
    seen.add(id);
  }
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
