import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import {
  componentField, contribution, contributionModule, disposeBatch, hashJson, sampleKey, splitByWeights,
  type Batch, type DataSource, type DataSourceInfo, type JsonValue, type SampleKey,
} from '../../core/index.js';

/** Named mixes: weights of [first, second] source (strategy-specs §3.7: 70 % real + 30 % synthetic). */
export const MIX_PRESETS = { mix70_30: [0.7, 0.3] } as const satisfies Record<string, readonly number[]>;

export const mixOptions = z.object({
  sources: z.array(z.object({
    source: componentField('data'),
    weight: z.number().min(0).optional().describe('share of each batch (relative; default 1)'),
  })).min(1),
  preset: z.enum(Object.keys(MIX_PRESETS) as [keyof typeof MIX_PRESETS]).optional()
    .describe('named weights for two sources, e.g. mix70_30: 70 % from the first (real), 30 % from the second (synthetic)'),
  size: z.number().int().min(8).max(512).optional().describe('resize every part to size×size (needed when the parts differ)'),
});
type Options = z.infer<typeof mixOptions>;

/** The weights a mix's options give, or why they cannot. */
export function mixWeights(o: Pick<Options, 'sources' | 'preset'>): number[] {
  if (o.preset) {
    const w = MIX_PRESETS[o.preset];
    if (o.sources.length !== w.length) throw new Error(`mix: preset ${o.preset} needs exactly ${w.length} sources (real first, synthetic second), got ${o.sources.length}`);
    const set = o.sources.findIndex((s) => s.weight !== undefined);
    if (set >= 0) throw new Error(`mix: sources[${set}].weight is set and so is preset ${o.preset}; use one`);
    return [...w];
  }
  const w = o.sources.map((s) => s.weight ?? 1);
  if (!w.some((x) => x > 0)) throw new Error('mix: every source has weight 0');
  return w;
}

const PART = /^m(\d+)\|/;

/**
 * Several sources in one stream: each batch of B is split by the weights with the
 * largest-remainder rule (deterministic), part i's samples first for i = 0, 1, …. Keys are
 * prefixed with the part (`m<i>|`) so they stay distinct; labels only when every part has
 * them, offset so the label spaces do not overlap.
 */
class MixSource implements DataSource {
  private infos: DataSourceInfo[] = [];
  private labelOffsets?: number[];

  constructor(private readonly o: Options, private readonly parts: readonly DataSource[], private readonly weights: readonly number[]) {}

  async init(): Promise<DataSourceInfo> {
    this.infos = [];
    for (const p of this.parts) this.infos.push(await p.init());
    const withIds = this.infos.every((i) => i.identities !== undefined);
    if (withIds) {
      let acc = 0;
      this.labelOffsets = this.infos.map((i) => { const off = acc; acc += i.identities!; return off; });
    }
    const total = this.weights.reduce((a, b) => a + b, 0);
    return {
      name: `mix${this.o.preset ? ` ${this.o.preset}` : ''}: ${this.infos.map((info, i) => `${(100 * this.weights[i]! / total).toFixed(0)} % ${info.name}`).join(' + ')}`,
      images: this.infos.reduce((n, i) => n + i.images, 0),
      ...(withIds ? { identities: this.infos.reduce((n, i) => n + i.identities!, 0) } : {}),
      skipped: this.infos.flatMap((i) => i.skipped),
      listHash: hashJson({ parts: this.infos.map((i) => i.listHash), weights: this.weights, size: this.o.size ?? null }),
    };
  }

  /** How a batch of `batchSize` splits over the parts. */
  split(batchSize: number): number[] { return splitByWeights(batchSize, this.weights); }

  async next(batchSize: number): Promise<Batch> {
    const counts = this.split(batchSize);
    const got: { i: number; b: Batch }[] = [];
    try {
      for (const [i, n] of counts.entries()) if (n > 0) got.push({ i, b: await this.parts[i]!.next(n) });
      const sizes = got.map(({ b }) => b.images.shape[1] + '×' + b.images.shape[2]);
      if (this.o.size === undefined && new Set(sizes).size > 1) {
        throw new Error(`mix: the parts give images of different sizes (${got.map(({ i }, j) => `part ${i}: ${sizes[j]}`).join(', ')}); set size:`);
      }
      const withViews = got.filter(({ b }) => b.views?.student).length;
      if (withViews > 0 && withViews < got.length) throw new Error('mix: some parts give a student view and some do not; wrap the whole mix in views instead');
      const fit = (x: tf.Tensor4D) => (this.o.size === undefined || (x.shape[1] === this.o.size && x.shape[2] === this.o.size) ? x : tf.image.resizeBilinear(x, [this.o.size, this.o.size], false, true));
      const images = tf.tidy(() => tf.concat(got.map(({ b }) => fit(b.images)), 0) as tf.Tensor4D);
      const student = withViews > 0 ? tf.tidy(() => tf.concat(got.map(({ b }) => b.views!.student!), 0) as tf.Tensor4D) : undefined;
      const keys: SampleKey[] = got.flatMap(({ i, b }) => b.keys.map((k) => sampleKey(`m${i}|${k}`)));
      const labels = this.labelOffsets && got.every(({ b }) => b.labels)
        ? Int32Array.from(got.flatMap(({ i, b }) => Array.from(b.labels!, (l) => l + this.labelOffsets![i]!)))
        : undefined;
      const cacheableSamples = got.flatMap(({ b }) => b.cacheableSamples ?? b.keys.map(() => b.cacheable));
      const unflipped = got.flatMap(({ i, b }) => b.keys.map((_, j) => { const u = b.unflipped?.[j]; return u ? sampleKey(`m${i}|${u}`) : null; }));
      return {
        images, keys, cacheable: cacheableSamples.every(Boolean), ...(cacheableSamples.some(Boolean) && !cacheableSamples.every(Boolean) ? { cacheableSamples } : {}),
        ...(labels ? { labels } : {}), ...(student ? { views: { student } } : {}), ...(unflipped.some((k) => k !== null) ? { unflipped } : {}),
      };
    } finally {
      for (const { b } of got) disposeBatch(b);
    }
  }

  /** Routes each key's signal to the part it came from. */
  feedback(keys: readonly SampleKey[], signal: Float32Array): void {
    const byPart = new Map<number, { keys: SampleKey[]; values: number[] }>();
    keys.forEach((k, j) => {
      const m = PART.exec(k);
      if (!m) throw new Error(`mix: feedback for ${k}, which is not a mix key`);
      const i = Number(m[1]);
      if (!byPart.has(i)) byPart.set(i, { keys: [], values: [] });
      byPart.get(i)!.keys.push(sampleKey(k.slice(m[0].length)));
      byPart.get(i)!.values.push(signal[j]!);
    });
    for (const [i, f] of byPart) this.parts[i]?.feedback?.(f.keys, Float32Array.from(f.values));
  }

  state(): JsonValue { return { parts: this.parts.map((p) => p.state()) }; }

  restore(s: JsonValue): void {
    const o = s as { parts: JsonValue[] };
    if (!Array.isArray(o?.parts) || o.parts.length !== this.parts.length) throw new Error(`mix: saved state has ${o?.parts?.length ?? 0} parts, this mix ${this.parts.length}`);
    this.parts.forEach((p, i) => p.restore(o.parts[i]!));
  }

  dispose(): void { for (const p of this.parts) p.dispose(); }
}

export const mix = contribution({
  slot: 'data',
  kind: 'mix',
  summary: 'several sources in one stream, each batch split by weights (largest remainder); presets such as mix70_30 (real + synthetic)',
  options: mixOptions,
  async create(o, ctx) {
    const weights = mixWeights(o);
    const parts: DataSource[] = [];
    try {
      for (const s of o.sources) parts.push(await ctx.build('data', s.source));
    } catch (e) {
      parts.forEach((p) => p.dispose());
      throw e;
    }
    return new MixSource(o, parts, weights);
  },
});

export default contributionModule(mix);
