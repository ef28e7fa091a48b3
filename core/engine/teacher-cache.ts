import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { Batch, SampleKey } from '../interfaces/data-source.js';
import type { Teacher } from '../interfaces/teacher.js';
import { writeFileAtomic } from '../util/fs.js';
import { hashJson } from '../util/hash.js';

/**
 * Teacher embeddings computed once per image. In memory for the run, and on disk under
 * `<runsDir>/.cache/teacher-embeddings/` keyed by (teacher weights hash, preprocessing
 * contract, data list hash), so other runs and ablation cells over the same images reuse
 * them; any change of a key part gives another file.
 */
export class TeacherCache {
  private readonly rows = new Map<SampleKey, Float32Array>();
  private saved = 0;
  hits = 0;
  misses = 0;
  readonly file?: string;

  constructor(readonly teacher: Teacher, cacheDir?: string, dataListHash?: string) {
    if (cacheDir && dataListHash) {
      const key = hashJson({ weights: teacher.weightsHash, contract: teacher.contract, data: dataListHash }).slice(0, 24);
      this.file = path.join(cacheDir, 'teacher-embeddings', `${key}.f32`);
    }
  }

  /** Loads rows saved by earlier runs, if any. */
  async load(): Promise<number> {
    if (!this.file || !existsSync(this.file) || !existsSync(this.file + '.json')) return 0;
    const meta = JSON.parse(await readFile(this.file + '.json', 'utf8')) as { dim: number; keys: SampleKey[] };
    if (meta.dim !== this.teacher.embeddingDim) return 0;
    const b = await readFile(this.file);
    const data = new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
    if (data.length !== meta.keys.length * meta.dim) return 0; // a torn file: recompute
    meta.keys.forEach((k, i) => this.rows.set(k, data.subarray(i * meta.dim, (i + 1) * meta.dim)));
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
    await writeFileAtomic(this.file, new Uint8Array(data.buffer));
    await writeFileAtomic(this.file + '.json', JSON.stringify({ teacher: this.teacher.name, dim: d, keys }));
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
