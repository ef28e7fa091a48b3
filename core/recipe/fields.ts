import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import type { Slot } from '../di/contribution.js';

// Recipe validation checks that named files exist, so a typo fails before a run folder is
// made. The check needs to know it is validating (not exporting a JSON Schema), hence the
// flag the validator sets around its synchronous parse.
let checkFiles = false;

export function withFileChecks<T>(fn: () => T): T {
  const prev = checkFiles;
  checkFiles = true;
  try { return fn(); } finally { checkFiles = prev; }
}

/** A path to an existing file or folder (relative paths are relative to the working directory). */
export function existingPath(what: 'file' | 'folder' | 'file or folder' = 'file') {
  return z.string().min(1).superRefine((p, ctx) => {
    if (!checkFiles) return;
    const abs = path.resolve(p);
    if (!existsSync(abs)) { ctx.addIssue({ code: 'custom', message: `${what} not found: ${p} (resolved to ${abs})` }); return; }
    const isDir = statSync(abs).isDirectory();
    if (what === 'folder' && !isDir) ctx.addIssue({ code: 'custom', message: `${p} is a file; a folder is expected here` });
    if (what === 'file' && isDir) ctx.addIssue({ code: 'custom', message: `${p} is a folder; a file is expected here` });
  }).describe(`path to an existing ${what}`);
}

/** Where a nested component's slot is recorded on its schema (read by the validator). */
export const COMPONENT_SLOT = 'facedistillSlot';

/**
 * An option that is itself a component (`head: { kind: arcface, m: 0.4 }`, a mix's
 * sources): the validator checks it against the named kind's schema, with locations, and
 * the factory builds it through `ctx.build(slot, value)`.
 */
export function componentField<S extends Slot>(slot: S) {
  return z.looseObject({ kind: z.string().describe(`registered ${slot} kind`) }).meta({ [COMPONENT_SLOT]: slot, description: `a ${slot} component: { kind, ...options }` });
}

/** The slot of a schema made by componentField, if it is one. */
export function componentSlotOf(schema: z.ZodType): Slot | undefined {
  const m = z.globalRegistry.get(schema) as Record<string, unknown> | undefined;
  return m?.[COMPONENT_SLOT] as Slot | undefined;
}
