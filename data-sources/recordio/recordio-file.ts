// MXNet / dmlc RecordIO framing (strategy-specs 7.8; dmlc-core include/dmlc/recordio.h,
// src/recordio.cc). One physical part: magic u32 LE, lrec u32 LE = (cflag << 29) | length, the
// data, zero padding to 4 bytes. cflag 0 = whole record, 1/2/3 = first/middle/last part of a
// record whose payload held the magic word at a 4-aligned offset: the writer split there and
// dropped the word, so the reader joins the parts with the 4 magic bytes put back.
import { open, readFile, type FileHandle } from 'node:fs/promises';
import path from 'node:path';

export const RECORDIO_MAGIC = 0xced7230a;
/** The older variant with a 30-bit length field; its framing differs, so we refuse it. */
export const OLD_RECORDIO_MAGIC = 0x3ed7230a;
const MAGIC_BYTES = Uint8Array.from([0x0a, 0x23, 0xd7, 0xce]);
const LENGTH_MASK = 0x1fffffff;

/** `train.idx`: `<key>\t<byte offset>` per line (mxnet MXIndexedRecordIO.write_idx). */
export interface RecordIndex {
  /** Keys in file order (= write order; record 0 may come last). */
  readonly keys: Float64Array;
  offsetOf(key: number): number | undefined;
}

class DenseIndex implements RecordIndex {
  // MS1MV2 lists 5.9 M keys: a typed array indexed by key is ~47 MB where a Map is several times that.
  constructor(readonly keys: Float64Array, private readonly offsets: Float64Array) {}
  offsetOf(key: number): number | undefined {
    const v = Number.isInteger(key) && key >= 0 ? this.offsets[key] : undefined;
    return v === undefined || Number.isNaN(v) ? undefined : v;
  }
}

class SparseIndex implements RecordIndex {
  constructor(readonly keys: Float64Array, private readonly offsets: ReadonlyMap<number, number>) {}
  offsetOf(key: number): number | undefined { return this.offsets.get(key); }
}

/** Parses the .idx bytes without building a string per line (the MS1MV2 index is ~100 MB). */
export function parseIdx(bytes: Uint8Array, file: string): RecordIndex {
  let keys = new Float64Array(1024), offs = new Float64Array(1024);
  let n = 0, lineNo = 0, i = 0;
  const lineText = (start: number) => {
    let e = bytes.indexOf(0x0a, start);
    if (e < 0) e = bytes.length;
    return new TextDecoder().decode(bytes.subarray(start, Math.min(e, start + 80))).replace(/\r$/, '');
  };
  while (i < bytes.length) {
    const start = i;
    lineNo++;
    const nums: number[] = [];
    let cur = -1, bad = false;
    for (; i < bytes.length && bytes[i] !== 0x0a; i++) {
      const c = bytes[i]!;
      if (c >= 0x30 && c <= 0x39) cur = (cur < 0 ? 0 : cur * 10) + (c - 0x30);
      else if (c === 0x09 || c === 0x20 || c === 0x0d) { if (cur >= 0) { nums.push(cur); cur = -1; } }
      else bad = true;
    }
    if (cur >= 0) nums.push(cur);
    i++; // the newline
    if (nums.length === 0 && !bad) continue; // blank line
    if (bad || nums.length !== 2) throw new Error(`${file}:${lineNo}: expected "<key>\\t<offset>", found "${lineText(start)}"`);
    if (!nums.every(Number.isSafeInteger)) throw new Error(`${file}:${lineNo}: number out of range in "${lineText(start)}"`);
    if (n === keys.length) {
      const k2 = new Float64Array(2 * n), o2 = new Float64Array(2 * n);
      k2.set(keys); o2.set(offs); keys = k2; offs = o2;
    }
    keys[n] = nums[0]!; offs[n] = nums[1]!; n++;
  }
  if (n === 0) throw new Error(`${file}: no records listed`);
  keys = keys.slice(0, n); offs = offs.subarray(0, n);
  let max = 0;
  for (let j = 0; j < n; j++) max = Math.max(max, keys[j]!);
  const dup = (j: number, first: number) => new Error(`${file}: key ${keys[j]} listed twice (offsets ${first} and ${offs[j]})`);
  if (max < 2 * n + 1024) {
    const dense = new Float64Array(max + 1).fill(NaN);
    for (let j = 0; j < n; j++) {
      if (!Number.isNaN(dense[keys[j]!]!)) throw dup(j, dense[keys[j]!]!);
      dense[keys[j]!] = offs[j]!;
    }
    return new DenseIndex(keys, dense);
  }
  const map = new Map<number, number>();
  for (let j = 0; j < n; j++) {
    if (map.has(keys[j]!)) throw dup(j, map.get(keys[j]!)!);
    map.set(keys[j]!, offs[j]!);
  }
  return new SparseIndex(keys, map);
}

export async function readIdx(file: string): Promise<{ index: RecordIndex; bytes: Uint8Array }> {
  const bytes = await readFile(file);
  return { index: parseIdx(bytes, file), bytes };
}

/** Random access to the records of a `.rec` file by byte offset; nothing is read ahead of need. */
export class RecordFile {
  private constructor(private readonly fh: FileHandle, readonly file: string, readonly size: number) {}

  static async open(file: string): Promise<RecordFile> {
    const fh = await open(file, 'r');
    try {
      return new RecordFile(fh, file, (await fh.stat()).size);
    } catch (e) {
      await fh.close();
      throw e;
    }
  }

  private async readAt(pos: number, n: number): Promise<Uint8Array> {
    const buf = new Uint8Array(n);
    let got = 0;
    while (got < n) {
      const { bytesRead } = await this.fh.read(buf, got, n - got, pos + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return got === n ? buf : buf.subarray(0, got);
  }

  /**
   * The payload of the record starting at `offset` (all parts joined). `hint` is how many bytes
   * to read in the first go: a record that fits costs one read.
   */
  async read(offset: number, hint = 16384): Promise<Uint8Array> {
    const where = `${path.basename(this.file)}: record at byte offset ${offset}`;
    const parts: Uint8Array[] = [];
    let pos = offset;
    let chunk = await this.readAt(pos, Math.max(8, Math.min(hint, this.size - pos)));
    let chunkPos = pos;
    for (;;) {
      if (pos + 8 > this.size) throw new Error(`${where}: part header at ${pos} runs past the end of the file (${this.size} bytes; truncated?)`);
      if (pos + 8 > chunkPos + chunk.length) { chunk = await this.readAt(pos, Math.min(hint, this.size - pos)); chunkPos = pos; }
      const dv = new DataView(chunk.buffer, chunk.byteOffset + (pos - chunkPos), 8);
      const magic = dv.getUint32(0, true);
      if (magic === OLD_RECORDIO_MAGIC) {
        throw new Error(`${where}: magic 0x3ED7230A at ${pos} is the old RecordIO variant (30-bit lengths), which this reader does not support; repack with a current mxnet/dmlc writer`);
      }
      if (magic !== RECORDIO_MAGIC) {
        throw new Error(`${where}: bad magic 0x${magic.toString(16).toUpperCase().padStart(8, '0')} at ${pos} (expected 0xCED7230A; wrong offset in the .idx or a corrupt file)`);
      }
      const lrec = dv.getUint32(4, true);
      const cflag = (lrec >>> 29) & 7, len = lrec & LENGTH_MASK;
      const first = parts.length === 0;
      if (first ? cflag !== 0 && cflag !== 1 : cflag !== 2 && cflag !== 3) {
        throw new Error(`${where}: part at ${pos} has cflag ${cflag}, expected ${first ? '0 (whole) or 1 (first part)' : '2 (middle) or 3 (last part)'}`);
      }
      const padded = (len + 3) & ~3;
      if (pos + 8 + padded > this.size) {
        throw new Error(`${where}: part at ${pos} needs ${8 + padded} bytes but the file ends at ${this.size} (truncated?)`);
      }
      const start = pos + 8;
      if (start + len <= chunkPos + chunk.length) parts.push(chunk.subarray(start - chunkPos, start - chunkPos + len));
      else parts.push(await this.readAt(start, len));
      pos = start + padded;
      if (cflag === 0 || cflag === 3) break;
    }
    if (parts.length === 1) return parts[0]!;
    const total = parts.reduce((n, p) => n + p.length, 0) + 4 * (parts.length - 1);
    const out = new Uint8Array(total);
    let o = 0;
    parts.forEach((p, i) => {
      if (i > 0) { out.set(MAGIC_BYTES, o); o += 4; }
      out.set(p, o); o += p.length;
    });
    return out;
  }

  async close(): Promise<void> { await this.fh.close(); }
}
