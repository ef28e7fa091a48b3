import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { stableStringify } from './json.js';

export function sha256(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Content hash of files, in the given order (names are part of the hash). */
export async function hashFiles(paths: readonly string[]): Promise<string> {
  const h = createHash('sha256');
  for (const p of paths) {
    h.update(p.split('/').pop() ?? p);
    h.update(await readFile(p));
  }
  return h.digest('hex');
}

export function hashJson(v: unknown): string {
  return sha256(stableStringify(v));
}
