import type { JsonValue } from '../util/json.js';
import type { BatchSampler } from './batch-sampler.js';
import { EpochSampler } from './epoch-sampler.js';
import { PkSampler } from './pk-sampler.js';

/**
 * The EKD batch (strategy-specs §5.2): a uniform ("general") part first, then an
 * identity-balanced P×K part. With batch size B the general part has B − P·K samples
 * (TFace: 32 general + 8 × 4 balanced per device).
 */
export class GeneralPlusPkSampler implements BatchSampler {
  private readonly general: EpochSampler;
  private readonly pk: PkSampler;

  constructor(labels: ArrayLike<number>, identities: number, perIdentity: number, seed: number) {
    this.general = new EpochSampler(labels.length, seed);
    this.pk = new PkSampler(labels, identities, perIdentity, (seed ^ 0x9e3779b9) >>> 0);
  }

  /** How many samples of a batch of `batchSize` come from the uniform part (they come first). */
  generalCount(batchSize: number): number { return batchSize - this.pk.batchSize; }

  take(batchSize: number): number[] {
    const g = this.generalCount(batchSize);
    if (g < 1) throw new Error(`general-plus-pk sampler: batch size ${batchSize} leaves no room for the uniform part beside ${this.pk.identities} × ${this.pk.perIdentity} = ${this.pk.batchSize} balanced samples`);
    return [...this.general.take(g), ...this.pk.take(this.pk.batchSize)];
  }

  state(): JsonValue { return { general: this.general.state(), pk: this.pk.state() }; }

  restore(s: JsonValue): void {
    const o = s as { general: JsonValue; pk: JsonValue };
    this.general.restore(o.general);
    this.pk.restore(o.pk);
  }
}
