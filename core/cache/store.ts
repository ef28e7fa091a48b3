import type { Dirent, Stats } from 'node:fs';
import { lstat, readdir, rmdir, stat, unlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CACHE_KINDS, cacheKind, type CacheKind } from './kinds.js';

/** A cache root or kind that cannot be used (missing, not a facedistill cache, unknown kind): exit 2. */
export class CacheError extends Error {}

/** The default cache root, as recipes default it: `<runsDir>/.cache` with runsDir `runs`, relative to the working directory. */
export function cacheRootOf(o: { runsDir?: string; cacheDir?: string } = {}, cwd = process.cwd()): string {
  if (o.runsDir !== undefined && o.cacheDir !== undefined) throw new CacheError('give --runs-dir or --cache-dir, not both');
  return path.resolve(cwd, o.cacheDir ?? path.join(o.runsDir ?? 'runs', '.cache'));
}

export interface KindUsage {
  readonly kind: string;
  readonly description: string;
  /** Files (and symbolic links, counted as themselves) anywhere below the kind folder. */
  readonly files: number;
  readonly bytes: number;
  /** Latest modification time of those files; null when there are none. */
  readonly newest: Date | null;
  /** Why the folder was not looked into, e.g. it is a symbolic link. */
  readonly note?: string;
}

export interface CacheListing {
  readonly root: string;
  readonly kinds: readonly KindUsage[];
  readonly total: { readonly files: number; readonly bytes: number };
  /** Entries of the root that are no known cache kind: never counted nor deleted. */
  readonly other: readonly string[];
}

export interface ClearResult {
  readonly root: string;
  /** What each cleared kind held before (or, with dryRun, holds and would lose). */
  readonly removed: readonly KindUsage[];
  readonly total: { readonly files: number; readonly bytes: number };
  readonly dryRun: boolean;
}

/** A path as printed: relative to the working directory when inside it. */
export const shown = (p: string) => {
  const rel = path.relative(process.cwd(), p);
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : p;
};

/**
 * Checks that `dir` is a facedistill cache root and returns its absolute path: an existing
 * folder (a symbolic link to one is followed, once) that holds at least one known kind folder,
 * or is empty. Anything else (a runs folder, a home folder, a file) is refused.
 */
export async function openCacheRoot(dir: string): Promise<string> {
  const root = path.resolve(dir);
  let st: Stats;
  try {
    st = await stat(root);
  } catch {
    throw new CacheError(`no cache folder at ${shown(root)} (give the runs folder with --runs-dir, or the cache folder with --cache-dir)`);
  }
  if (!st.isDirectory()) throw new CacheError(`${shown(root)} is not a folder`);
  if (root === path.parse(root).root || root === path.resolve(os.homedir())) throw new CacheError(`${root} is not a facedistill cache folder`);
  const entries = await readdir(root, { withFileTypes: true });
  const kinds = entries.filter((e) => e.isDirectory() && cacheKind(e.name));
  if (entries.length > 0 && kinds.length === 0) {
    throw new CacheError(`${shown(root)} is not a facedistill cache folder: it has none of ${CACHE_KINDS.map((k) => k.name).join(', ')} (pass the cache folder itself, e.g. runs/.cache or a recipe's cacheDir:)`);
  }
  return root;
}

function isInside(parent: string, child: string): boolean {
  const rel = path.relative(parent, child);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
}

/** Files, bytes and newest mtime below `p`; never follows a symbolic link (it counts as a file of its own size). */
async function measure(p: string): Promise<{ files: number; bytes: number; newest: number }> {
  let st: Stats, names: string[] = [];
  try {
    st = await lstat(p);
    if (st.isDirectory()) names = await readdir(p);
  } catch (e) {
    if (isGone(e)) return { files: 0, bytes: 0, newest: -Infinity }; // renamed or removed meanwhile (a run writing)
    throw e;
  }
  if (!st.isDirectory()) return { files: 1, bytes: st.size, newest: st.mtimeMs };
  let files = 0, bytes = 0, newest = -Infinity;
  for (const e of names) {
    const m = await measure(path.join(p, e));
    files += m.files; bytes += m.bytes; newest = Math.max(newest, m.newest);
  }
  return { files, bytes, newest };
}

/** Deletes `p` (a file, a link or a folder and everything in it) without following links. */
async function removeTree(p: string): Promise<void> {
  try {
    const st = await lstat(p);
    if (st.isDirectory()) {
      for (const e of await readdir(p)) await removeTree(path.join(p, e));
      await rmdir(p);
    } else {
      await unlink(p);
    }
  } catch (e) {
    if (!isGone(e)) throw e;
  }
}

const isGone = (e: unknown) => (e as NodeJS.ErrnoException).code === 'ENOENT';

/** The kind folder of `kind` under `root`, or why it cannot be used; undefined when absent. */
async function kindFolder(root: string, kind: CacheKind): Promise<{ dir: string; note?: string } | undefined> {
  const dir = path.join(root, kind.name);
  let st: Stats;
  try { st = await lstat(dir); } catch { return undefined; }
  if (st.isSymbolicLink()) return { dir, note: 'a symbolic link: not followed, left alone' };
  if (!st.isDirectory()) return { dir, note: 'not a folder: left alone' };
  return { dir };
}

async function usageOf(root: string, kind: CacheKind): Promise<KindUsage & { dir?: string }> {
  const f = await kindFolder(root, kind);
  const base = { kind: kind.name, description: kind.description, files: 0, bytes: 0, newest: null };
  if (!f) return base;
  if (f.note) return { ...base, note: f.note };
  const m = await measure(f.dir);
  return { ...base, files: m.files, bytes: m.bytes, newest: m.files > 0 ? new Date(m.newest) : null, dir: f.dir };
}

/** One row per known kind (absent ones with zero files), the total, and the root's other entries. */
export async function listCache(dir: string): Promise<CacheListing> {
  const root = await openCacheRoot(dir);
  const kinds: KindUsage[] = [];
  for (const k of CACHE_KINDS) {
    const { dir: _, ...u } = await usageOf(root, k);
    kinds.push(u);
  }
  const other = (await readdir(root, { withFileTypes: true })).filter((e: Dirent) => !cacheKind(e.name)).map((e) => e.name + (e.isDirectory() ? '/' : '')).sort();
  return { root, kinds, total: sumOf(kinds), other };
}

function sumOf(kinds: readonly KindUsage[]): { files: number; bytes: number } {
  return { files: kinds.reduce((s, k) => s + k.files, 0), bytes: kinds.reduce((s, k) => s + k.bytes, 0) };
}

/** Checks kind names; all kinds when none are given. */
export function resolveKinds(names: readonly string[]): CacheKind[] {
  if (names.length === 0) return [...CACHE_KINDS];
  const unknown = names.filter((n) => !cacheKind(n));
  if (unknown.length > 0) throw new CacheError(`unknown cache kind${unknown.length > 1 ? 's' : ''} ${unknown.map((n) => `"${n}"`).join(', ')} (known: ${CACHE_KINDS.map((k) => k.name).join(', ')})`);
  return [...new Set(names)].map((n) => cacheKind(n)!);
}

/**
 * Empties the folders of `kinds` (every kind when none are given) under the cache root; the
 * kind folders themselves stay. Deletes only inside known kind folders, never through a
 * symbolic link (a linked kind folder is skipped, a link inside one is removed as a link).
 * With `dryRun`, deletes nothing and says what would go.
 */
export async function clearCache(dir: string, kinds: readonly string[] = [], o: { dryRun?: boolean } = {}): Promise<ClearResult> {
  const wanted = resolveKinds(kinds);
  const root = await openCacheRoot(dir);
  const removed: KindUsage[] = [];
  for (const k of wanted) {
    const { dir: kdir, ...u } = await usageOf(root, k);
    removed.push(u);
    if (o.dryRun || !kdir) continue;
    if (!isInside(root, kdir)) throw new Error(`internal: ${kdir} is outside ${root}`);
    for (const e of await readdir(kdir)) {
      const p = path.join(kdir, e);
      if (!isInside(kdir, p)) throw new Error(`internal: ${p} is outside ${kdir}`);
      await removeTree(p);
    }
  }
  return { root, removed, total: sumOf(removed), dryRun: o.dryRun === true };
}

/** 1536 → "1.5 KiB". */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024, i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${v.toFixed(1)} ${units[i]}`;
}

function formatDate(d: Date | null): string {
  if (!d) return '-';
  const p = (x: number) => String(x).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
}

/** `cache ls` as a table: one row per kind, then the total. */
export function renderListing(l: CacheListing): string {
  const rows = [['kind', 'files', 'size', 'newest', 'what'], ...l.kinds.map((k) => [k.kind, String(k.files), formatBytes(k.bytes), formatDate(k.newest), k.description + (k.note ? ` (${k.note})` : '')]), ['total', String(l.total.files), formatBytes(l.total.bytes), '', '']];
  const w = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  const right = new Set([1, 2]);
  const lines = [`cache folder: ${shown(l.root)}`, ...rows.map((r) => r.map((x, c) => right.has(c) ? x.padStart(w[c]!) : x.padEnd(w[c]!)).join('  ').trimEnd())];
  if (l.other.length > 0) lines.push(`not a cache kind (left alone): ${l.other.join(', ')}`);
  return lines.join('\n') + '\n';
}

export function listingJson(l: CacheListing): unknown {
  return { root: l.root, kinds: l.kinds.map((k) => ({ ...k, newest: k.newest?.toISOString() ?? null })), total: l.total, other: l.other };
}

/** "1 file", "2 files". */
export const nFiles = (n: number) => `${n} file${n === 1 ? '' : 's'}`;

/** `cache clear`: what each non-empty kind lost and the bytes freed. */
export function renderClear(r: ClearResult): string {
  const verb = r.dryRun ? 'would remove' : 'removed';
  const lines = r.removed.filter((k) => k.note || k.files > 0).map((k) => k.note ? `skipped ${k.kind}: ${k.note}` : `${verb} ${k.kind}: ${nFiles(k.files)}, ${formatBytes(k.bytes)}`);
  lines.push(`${r.dryRun ? 'would free' : 'freed'} ${formatBytes(r.total.bytes)} (${nFiles(r.total.files)}) in ${shown(r.root)}`);
  return lines.join('\n') + '\n';
}
