import { mkdir, open, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** Write a file so that readers see either the old or the new content, never half of it. */
export async function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  const fh = await open(tmp, 'w');
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, file);
}

export async function writeJsonAtomic(file: string, v: unknown): Promise<void> {
  await writeFileAtomic(file, JSON.stringify(v, null, 2) + '\n');
}

export async function removeQuiet(p: string): Promise<void> {
  await rm(p, { recursive: true, force: true });
}

export async function ensureDir(p: string): Promise<void> {
  await mkdir(p, { recursive: true });
}

export { writeFile };
