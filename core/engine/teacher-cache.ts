import * as tf from '@tensorflow/tfjs';
import type { Batch, SampleKey } from '../interfaces/data-source.js';
import type { Teacher } from '../interfaces/teacher.js';

/** Teacher embeddings computed once per image for the life of a run (keyed by sample key). */
export class TeacherCache {
  private readonly rows = new Map<SampleKey, Float32Array>();
  hits = 0;
  misses = 0;
  constructor(readonly teacher: Teacher) {}

  async embed(batch: Batch): Promise<tf.Tensor2D> {
    const d = this.teacher.embeddingDim;
    if (!batch.cacheable) return this.teacher.embed(batch.images);
    const missing = batch.keys.map((k, i) => [k, i] as const).filter(([k]) => !this.rows.has(k));
    this.hits += batch.keys.length - missing.length;
    this.misses += missing.length;
    if (missing.length > 0) {
      const sub = tf.tidy(() => tf.gather(batch.images, missing.map(([, i]) => i)) as tf.Tensor4D);
      const emb = await this.teacher.embed(sub);
      sub.dispose();
      const data = (await emb.data()) as Float32Array;
      emb.dispose();
      missing.forEach(([k], j) => this.rows.set(k, data.slice(j * d, (j + 1) * d)));
    }
    const out = new Float32Array(batch.keys.length * d);
    batch.keys.forEach((k, i) => out.set(this.rows.get(k)!, i * d));
    return tf.tensor2d(out, [batch.keys.length, d]);
  }

  get size(): number { return this.rows.size; }
}
