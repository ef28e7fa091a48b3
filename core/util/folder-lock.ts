import { readFileSync } from 'node:fs';
import { link, mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';

/** Who holds a lock: written into the lock file. */
export interface LockHolder {
  readonly pid: number;
  readonly host: string;
  readonly startedAt: string;
  readonly what: string;
}

/** Another live process holds the lock (or one on another host, whose liveness cannot be checked). */
export class LockHeldError extends Error {
  constructor(readonly file: string, readonly holder: LockHolder) {
    super(`${holder.what} (pid ${holder.pid} on ${holder.host}, since ${holder.startedAt}) holds ${file}`);
  }
}

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch (e) { return (e as NodeJS.ErrnoException).code === 'EPERM'; }
}

function parseHolder(text: string): LockHolder | undefined {
  try {
    const h = JSON.parse(text) as Partial<LockHolder>;
    if (typeof h.pid === 'number' && typeof h.host === 'string') return { pid: h.pid, host: h.host, startedAt: String(h.startedAt ?? '?'), what: String(h.what ?? 'a process') };
  } catch { /* torn or foreign */ }
  const pid = Number(text.trim()); // the ablation lock's older format: a bare pid
  return Number.isInteger(pid) && pid > 0 ? { pid, host: hostname(), startedAt: '?', what: 'a process' } : undefined;
}

/** Whether the holder is gone for sure: on this host and its pid no longer runs (or the file says nothing). */
function stale(h: LockHolder | undefined): boolean {
  return h === undefined || (h.host === hostname() && h.pid !== process.pid && !alive(h.pid));
}

/**
 * An exclusive lock on a folder's work, as a file created by link() (which fails where the name exists): of two processes
 * starting together exactly one gets it. A lock whose holder died (same host, pid gone) is
 * taken over: moved aside under a unique name, then created afresh, so two processes taking
 * over the same stale lock cannot both succeed. A lock from another host is respected (its
 * pid cannot be checked); the error says which file to remove if that host is gone.
 * Returns the release function.
 */
export async function acquireLock(file: string, what: string): Promise<() => Promise<void>> {
  await mkdir(path.dirname(file), { recursive: true });
  const me: LockHolder = { pid: process.pid, host: hostname(), startedAt: new Date().toISOString(), what };
  for (let attempt = 0; attempt < 3; attempt++) {
    // The lock appears with its content or not at all: written aside, then hard-linked into place
    // (link fails if the name exists), so no reader ever sees an empty lock and takes it for stale.
    const tmp = `${file}.${process.pid}.tmp`;
    const fh = await open(tmp, 'w');
    try { await fh.writeFile(JSON.stringify(me) + '\n'); await fh.sync(); } finally { await fh.close(); }
    try {
      await link(tmp, file);
      await rm(tmp, { force: true });
      let released = false;
      return async () => {
        if (released) return;
        released = true;
        // Only our own lock: a process that took over a lock we held too long must keep its own.
        try { if (parseHolder(await readFile(file, 'utf8'))?.pid === process.pid) await rm(file, { force: true }); } catch { /* gone */ }
      };
    } catch (e) {
      await rm(tmp, { force: true });
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    let text = '';
    try { text = await readFile(file, 'utf8'); } catch { continue; } // released meanwhile: try again
    const holder = parseHolder(text);
    if (!stale(holder)) throw new LockHeldError(file, holder!);
    const aside = `${file}.stale-${process.pid}-${attempt}`;
    try {
      await rename(file, aside);
      // Renamed a lock that changed hands between our read and the rename: put it back and stop.
      const moved = parseHolder(await readFile(aside, 'utf8'));
      if (!stale(moved)) { await rename(aside, file).catch(() => undefined); throw new LockHeldError(file, moved!); }
      await rm(aside, { force: true });
    } catch (e) {
      if (e instanceof LockHeldError) throw e;
      // Someone else moved it first: try again.
    }
  }
  let text = '';
  try { text = readFileSync(file, 'utf8'); } catch { /* released just now */ }
  throw new LockHeldError(file, parseHolder(text) ?? { pid: 0, host: '?', startedAt: '?', what: 'processes taking turns with' });
}
