import * as tf from '@tensorflow/tfjs';
import {
  Rng, sampleKey,
  type DataSourceInfo, type JsonValue, type LatentBatch, type LatentGenerator, type RngState, type SampleKey,
} from '../../core/index.js';

interface Remembered { readonly keys: readonly SampleKey[]; readonly latents: Float32Array }

/**
 * What every latent generator shares: a seeded stream of fresh latents, and SynthDistill's
 * dynamic resampling (strategy-specs §1.4 steps 5–6). After `feedback(keys, std)` on rows of
 * the last batch, the next `next()` returns w′_i = w_i + std_i·ε_i (ε_i ~ N(0, I), drawn from
 * the same seeded stream at feedback time) instead of fresh latents; then fresh ones again.
 * Subclasses say how fresh latents are drawn and how latents become images.
 */
export abstract class LatentStream implements LatentGenerator {
  abstract readonly latentDim: number;
  protected readonly rng: Rng;
  private counter = 0;
  private last?: Remembered;
  private pending?: Float32Array;

  constructor(private readonly keyPrefix: string, seed: number) {
    this.rng = new Rng(seed);
  }

  abstract init(): Promise<DataSourceInfo>;
  /** Fresh latents [n, latentDim] in the resampling space, drawn from `this.rng`. */
  protected abstract fresh(n: number): tf.Tensor2D;
  abstract render(latents: tf.Tensor2D): tf.Tensor4D;
  abstract dispose(): void;

  /** n standard normals from the seeded stream (row-major). */
  protected normals(n: number): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = this.rng.normal();
    return out;
  }

  async next(batchSize: number): Promise<LatentBatch> {
    let latents: tf.Tensor2D;
    if (this.pending) {
      const rows = this.pending.length / this.latentDim;
      if (rows !== batchSize) throw new Error(`${this.keyPrefix}: the resampled batch has ${rows} rows (from feedback), next() asked for ${batchSize}`);
      latents = tf.tensor2d(this.pending, [rows, this.latentDim]);
      this.pending = undefined;
    } else {
      latents = this.fresh(batchSize);
    }
    let images: tf.Tensor4D;
    try {
      images = this.render(latents);
    } catch (e) {
      latents.dispose();
      throw e;
    }
    const keys = Array.from({ length: batchSize }, () => sampleKey(`${this.keyPrefix}:${this.counter++}`));
    this.last = { keys, latents: Float32Array.from(latents.dataSync()) };
    return { images, latents, keys, cacheable: false };
  }

  feedback(keys: readonly SampleKey[], std: Float32Array): void {
    if (keys.length !== std.length) throw new Error(`${this.keyPrefix}: feedback got ${keys.length} keys but ${std.length} std values`);
    const last = this.last;
    const rows = keys.map((k) => {
      const i = last ? last.keys.indexOf(k) : -1;
      if (i < 0) throw new Error(`${this.keyPrefix}: feedback for ${k}, which is not in the last batch`);
      return i;
    });
    const d = this.latentDim;
    const out = new Float32Array(keys.length * d);
    rows.forEach((r, i) => {
      const s = std[i]!;
      for (let j = 0; j < d; j++) out[i * d + j] = last!.latents[r * d + j]! + s * this.rng.normal();
    });
    this.pending = out;
  }

  state(): JsonValue {
    return {
      rng: [...this.rng.state()], counter: this.counter,
      last: this.last ? { keys: [...this.last.keys], latents: Array.from(this.last.latents) } : null,
      pending: this.pending ? Array.from(this.pending) : null,
    };
  }

  restore(s: JsonValue): void {
    const o = s as { rng: number[]; counter: number; last: { keys: string[]; latents: number[] } | null; pending: number[] | null };
    this.rng.restore(o.rng as unknown as RngState);
    this.counter = o.counter;
    this.last = o.last ? { keys: o.last.keys.map(sampleKey), latents: Float32Array.from(o.last.latents) } : undefined;
    this.pending = o.pending ? Float32Array.from(o.pending) : undefined;
  }
}
