import type { Batch, DataSource, DataSourceInfo, SampleKey } from '../interfaces/data-source.js';
import type { JsonValue } from '../util/json.js';
import { Rng, type RngState } from '../util/rng.js';
import { withoutFlip } from './flips.js';

/**
 * A source that draws per-sample choices (flips, views) over another source's batches, from a
 * seeded stream of its own: its state is that stream and the inner source's, feedback goes to
 * the inner source under the inner keys, and disposing it disposes the inner source.
 */
export abstract class FlippingWrapperSource implements DataSource {
  protected readonly rng: Rng;

  /** `salt` keeps this stream apart from the inner source's, which draws from the run seed too. */
  constructor(protected readonly name: string, protected readonly inner: DataSource, seed: number, salt: number) {
    this.rng = new Rng((seed ^ salt) >>> 0);
  }

  abstract init(): Promise<DataSourceInfo>;
  abstract next(batchSize: number): Promise<Batch>;

  feedback(keys: readonly SampleKey[], signal: Float32Array): void {
    this.inner.feedback?.(keys.map(withoutFlip), signal);
  }

  state(): JsonValue { return { rng: [...this.rng.state()], inner: this.inner.state() }; }

  restore(s: JsonValue): void {
    const o = s as { rng: number[]; inner: JsonValue };
    if (!Array.isArray(o?.rng)) throw new Error(`${this.name}: the saved state has no rng`);
    this.rng.restore(o.rng as unknown as RngState);
    this.inner.restore(o.inner);
  }

  dispose(): void { this.inner.dispose(); }
}
