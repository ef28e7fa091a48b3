import { existsSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';

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
    if (checkFiles && !existsSync(path.resolve(p))) {
      ctx.addIssue({ code: 'custom', message: `${what} not found: ${p} (resolved to ${path.resolve(p)})` });
    }
  }).describe(`path to an existing ${what}`);
}
