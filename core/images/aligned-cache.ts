import { existsSync } from 'node:fs';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { PREPROCESSING_VERSION } from '../cache/preprocessing-version.js';
import { hashJson } from '../util/hash.js';
import type { RgbImage } from './decode.js';
import { LANDMARK_CODE } from './face-aligner.js';

const MAGIC = 'FDAF1\n';

/** Header of an aligned-faces file: the side, and per listed file either its row or why it was skipped. */
interface Header { version: number; size: number; n: number; skipped: Record<string, string> }

/**
 * The aligned faces of an image list, on disk under `<cacheDir>/aligned-faces/`: decoding,
 * landmarks and the warp of tens of thousands of images take minutes, reading them back
 * seconds. One file per (source folder, every listed file's path, byte size and mtime, the
 * alignment options and side, the landmark net and decoder versions, PREPROCESSING_VERSION):
 * any change gives another file, never a stale face. Layout: "FDAF1\n", u32 header length,
 * a JSON header, then the kept faces' RGB bytes in list order (size·size·3 each).
 */
export class AlignedFaceCache {
  readonly file: string;

  constructor(cacheDir: string, key: { readonly root: string; readonly fileKeys: readonly string[]; readonly options: unknown; readonly size: number }, private readonly version = PREPROCESSING_VERSION) {
    this.file = path.join(cacheDir, 'aligned-faces', `${hashJson({ ...LANDMARK_CODE, version, key }).slice(0, 24)}.bin`);
  }

  /** The faces (or why each was skipped) for the n listed files, or undefined when there is no whole file for this key. */
  async load(n: number, size: number): Promise<(RgbImage | Error)[] | undefined> {
    if (!existsSync(this.file)) return undefined;
    const b = await readFile(this.file);
    if (b.length < MAGIC.length + 4 || b.subarray(0, MAGIC.length).toString('latin1') !== MAGIC) return undefined;
    const headLen = b.readUInt32LE(MAGIC.length);
    let h: Header;
    try { h = JSON.parse(b.subarray(MAGIC.length + 4, MAGIC.length + 4 + headLen).toString('utf8')) as Header; } catch { return undefined; }
    if (h.version !== this.version || h.n !== n || h.size !== size) return undefined;
    const side = size * size * 3;
    const start = MAGIC.length + 4 + headLen;
    const kept = n - Object.keys(h.skipped).length;
    if (b.length - start !== kept * side) return undefined; // torn: recompute
    const out: (RgbImage | Error)[] = [];
    let row = 0;
    for (let i = 0; i < n; i++) {
      const why = h.skipped[String(i)];
      if (why !== undefined) { out.push(new Error(why)); continue; }
      out.push({ data: new Uint8Array(b.buffer, b.byteOffset + start + row * side, side), size });
      row++;
    }
    return out;
  }

  /** Writes the faces under a temporary name, synced, then renamed: readers see a whole file or none. */
  async save(faces: readonly (RgbImage | Error)[], size: number): Promise<void> {
    const skipped: Record<string, string> = {};
    faces.forEach((f, i) => { if (f instanceof Error) skipped[String(i)] = f.message; });
    const head = Buffer.from(JSON.stringify({ version: this.version, size, n: faces.length, skipped } satisfies Header));
    const len = Buffer.alloc(4);
    len.writeUInt32LE(head.length);
    await mkdir(path.dirname(this.file), { recursive: true });
    const tmp = `${this.file}.tmp-${process.pid}`;
    const fh = await open(tmp, 'w');
    try {
      await fh.write(Buffer.from(MAGIC, 'latin1'));
      await fh.write(len);
      await fh.write(head);
      for (const f of faces) if (!(f instanceof Error)) await fh.write(f.data);
      await fh.sync();
    } catch (e) {
      await fh.close();
      await rm(tmp, { force: true });
      throw e;
    }
    await fh.close();
    await rename(tmp, this.file);
  }
}
