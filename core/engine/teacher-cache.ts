import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { Batch, SampleKey } from '../interfaces/data-source.js';
import type { Teacher } from '../interfaces/teacher.js';
import { PREPROCESSING_VERSION } from '../cache/preprocessing-version.js';
import { writeFileAtomic } from '../util/fs.js';
import { hashJson } from '../util/hash.js';

/**
 * The file name key of a teacher's embeddings of a data list: (teacher weights hash, input
 * contract, data list hash, preprocessing version). Any change of a part gives another file.
 */
export function teacherCacheKey(teacher: Pick<Teacher, 'weightsHash' | 'contract'>, dataListHash: string, preprocessingVersion = PREPROCESSING_VERSION): string {
  return hashJson({ weights: teacher.weightsHash, contract: teacher.contract, data: dataListHash, preprocessing: preprocessingVersion }).slice(0, 24);
}

/**
 * Teacher embeddings computed once per image. In memory for the run, and on disk under
 * `<runsDir>/.cache/teacher-embeddings/` keyed by `teacherCacheKey` (teacher weights hash,
 * preprocessing contract, data list hash, PREPROCESSING_VERSION), so other runs and ablation
 * cells over the same images reuse them; any change of a key part gives another file, and a
 * file whose header names another preprocessing version is never read.
 */
export class TeacherCache {
  private readonly rows = new Map<SampleKey, Float32Array>();
  private saved = 0;
  hits = 0;
  misses = 0;
  readonly file?: string;

  constructor(readonly teacher: Teacher, cacheDir?: string, dataListHash?: string, readonly preprocessingVersion = PREPROCESSING_VERSION) {
    if (cacheDir && dataListHash) {
      this.file = path.join(cacheDir, 'teacher-embeddings', `${teacherCacheKey(teacher, dataListHash, preprocessingVersion)}.bin`);
    }
  }

  /** Loads rows saved by earlier runs, if any. */
  async load(): Promise<number> {
    if (!this.file || !existsSync(this.file)) return 0;
    const file = decodeCacheFile(await readFile(this.file));
    // Torn, foreign or from other preprocessing code: recompute.
    if (!file || file.dim !== this.teacher.embeddingDim || file.preprocessing !== this.preprocessingVersion) return 0;
    file.keys.forEach((k, i) => this.rows.set(k, file.data.subarray(i * file.dim, (i + 1) * file.dim)));
    this.saved = this.rows.size;
    return this.rows.size;
  }

  /** Writes all rows if new ones were added since the last save. */
  async save(): Promise<void> {
    if (!this.file || this.rows.size === this.saved) return;
    const d = this.teacher.embeddingDim;
    const keys = [...this.rows.keys()];
    const data = new Float32Array(keys.length * d);
    keys.forEach((k, i) => data.set(this.rows.get(k)!, i * d));
    await writeFileAtomic(this.file, encodeCacheFile({ teacher: this.teacher.name, dim: d, preprocessing: this.preprocessingVersion, keys }, data));
    this.saved = keys.length;
  }

  async embed(batch: Batch): Promise<tf.Tensor2D> {
    const d = this.teacher.embeddingDim;
    const cacheable = batch.cacheableSamples ?? batch.keys.map(() => batch.cacheable);
    if (!cacheable.some(Boolean)) return this.teacher.embed(batch.images);
    // Embed what is not cached (and every uncacheable sample, e.g. the synthetic part of a mix).
    const todo = batch.keys.map((k, i) => [k, i] as const).filter(([k, i]) => !cacheable[i] || !this.rows.has(k));
    const cached = todo.filter(([, i]) => cacheable[i]).length;
    this.hits += cacheable.filter(Boolean).length - cached;
    this.misses += cached;
    const fresh = new Map<number, Float32Array>();
    if (todo.length > 0) {
      const sub = tf.tidy(() => tf.gather(batch.images, todo.map(([, i]) => i)) as tf.Tensor4D);
      const emb = await this.teacher.embed(sub);
      sub.dispose();
      const data = (await emb.data()) as Float32Array;
      emb.dispose();
      todo.forEach(([k, i], j) => {
        const row = data.slice(j * d, (j + 1) * d);
        if (cacheable[i]) this.rows.set(k, row);
        else fresh.set(i, row);
      });
    }
    const out = new Float32Array(batch.keys.length * d);
    batch.keys.forEach((k, i) => out.set(fresh.get(i) ?? this.rows.get(k)!, i * d));
    return tf.tensor2d(out, [batch.keys.length, d]);
  }

  get size(): number { return this.rows.size; }
}

// Keys and rows live in one file written by one atomic rename: ablation cells running in
// parallel save the same cache, and a key list from one process beside rows from another
// would silently pair images with the wrong embeddings.
const MAGIC = 'FDTC1\n';

function encodeCacheFile(header: { teacher: string; dim: number; preprocessing: number; keys: readonly SampleKey[] }, data: Float32Array): Uint8Array {
  const head = new TextEncoder().encode(JSON.stringify(header));
  const pad = (4 - ((MAGIC.length + 4 + head.length) % 4)) % 4; // rows start 4-byte aligned
  const out = new Uint8Array(MAGIC.length + 4 + head.length + pad + data.byteLength);
  out.set(new TextEncoder().encode(MAGIC), 0);
  new DataView(out.buffer).setUint32(MAGIC.length, head.length + pad, true);
  out.set(head, MAGIC.length + 4);
  out.fill(0x20, MAGIC.length + 4 + head.length, MAGIC.length + 4 + head.length + pad);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), MAGIC.length + 4 + head.length + pad);
  return out;
}

function decodeCacheFile(b: Buffer): { dim: number; preprocessing?: number; keys: SampleKey[]; data: Float32Array } | undefined {
  if (b.length < MAGIC.length + 4 || b.subarray(0, MAGIC.length).toString('latin1') !== MAGIC) return undefined;
  const headLen = b.readUInt32LE(MAGIC.length);
  const start = MAGIC.length + 4 + headLen;
  if (start > b.length || (b.length - start) % 4 !== 0) return undefined;
  let header: { dim: number; preprocessing?: number; keys: SampleKey[] };
  try { header = JSON.parse(b.subarray(MAGIC.length + 4, start).toString('utf8')) as typeof header; } catch { return undefined; }
  const data = new Float32Array(b.buffer.slice(b.byteOffset + start, b.byteOffset + b.length));
  return data.length === header.keys.length * header.dim ? { dim: header.dim, preprocessing: header.preprocessing, keys: header.keys, data } : undefined;
}
