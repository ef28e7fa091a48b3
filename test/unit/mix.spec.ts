import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { z } from 'zod';
import { contribution } from '../../core/di/contribution.js';
import { disposeBatch, sampleKey, type Batch, type DataSource, type SampleKey } from '../../core/interfaces/data-source.js';
import { mix, mixOptions, mixWeights } from '../../data-sources/mix/mix.js';
import { testContextWith, tmpDir } from '../helpers/fixtures.js';

/**
 * A test part: `count` images of side `size`, value at flat pixel p of image i = i + 3·sin(0.7·(i+1)·p)
 * (so pixel 0 holds the index, and the images span many directions), optionally labelled (label = index mod ids).
 */
const partOptions = z.object({ tag: z.string(), count: z.number().int(), size: z.number().int().default(8), ids: z.number().int().optional(), cacheable: z.boolean().default(true) });
const fed: { tag: string; keys: readonly SampleKey[]; signal: number[] }[] = [];
class Part implements DataSource {
  private pos = 0;
  constructor(private readonly o: z.infer<typeof partOptions>) {}
  async init() { return { name: this.o.tag, images: this.o.count, ...(this.o.ids ? { identities: this.o.ids } : {}), skipped: [], listHash: this.o.tag }; }
  async next(n: number): Promise<Batch> {
    const idx = Array.from({ length: n }, () => this.pos++ % this.o.count);
    const s = this.o.size;
    const d = s * s * 3;
    const images = tf.tensor4d(Float32Array.from({ length: n * d }, (_, j) => { const i = idx[Math.floor(j / d)]!; return i + 3 * Math.sin(0.7 * (i + 1) * (j % d)); }), [n, s, s, 3]);
    return { images, keys: idx.map((i) => sampleKey(`${this.o.tag}:${i}`)), cacheable: this.o.cacheable, ...(this.o.ids ? { labels: Int32Array.from(idx, (i) => i % this.o.ids!) } : {}) };
  }
  feedback(keys: readonly SampleKey[], signal: Float32Array) { fed.push({ tag: this.o.tag, keys, signal: Array.from(signal) }); }
  state() { return this.pos; }
  restore(s: unknown) { this.pos = s as number; }
  dispose() {}
}
const part = contribution({ slot: 'data', kind: 'test-part', summary: 'test only', options: partOptions, async create(o) { return new Part(o); } });

const src = (tag: string, extra: Record<string, unknown> = {}) => ({ kind: 'test-part', tag, count: 10, ...extra });
async function make(o: Record<string, unknown>, seed = 0) {
  const ctx = testContextWith(tmpDir('mix'), seed, part);
  const m = await mix.create(mixOptions.parse(o), ctx);
  return { m, info: await m.init() };
}

describe('mix data source', () => {
  it('mix70_30 splits a batch of 16 into 11 real + 5 synthetic (largest remainder), real first, keys prefixed', async () => {
    const { m, info } = await make({ preset: 'mix70_30', sources: [{ source: src('real', { ids: 5 }) }, { source: src('synth', { cacheable: false }) }] });
    expect(info.name).to.match(/^mix mix70_30: 70 % real \+ 30 % synth$/);
    expect(info.images).to.equal(20);
    expect(info.identities, 'one part has no identities').to.equal(undefined);
    const b = await m.next(16);
    expect(b.keys.slice(0, 11)).to.deep.equal(Array.from({ length: 10 }, (_, i) => `m0|real:${i}`).concat(['m0|real:0']));
    expect(b.keys.slice(11)).to.deep.equal([0, 1, 2, 3, 4].map((i) => `m1|synth:${i}`));
    expect(b.labels, 'labels only when every part has them').to.equal(undefined);
    expect(b.cacheable).to.equal(false);
    expect(b.cacheableSamples, 'the real part stays cacheable per sample').to.deep.equal([...Array(11).fill(true), ...Array(5).fill(false)]);
    // Images in the same order as the keys: pixel 0 holds the part's index.
    expect(Array.from(tf.tidy(() => tf.slice(b.images, [0, 0, 0, 0], [-1, 1, 1, 1]).dataSync()))).to.deep.equal([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 0, 1, 2, 3, 4]);
    disposeBatch(b);
  });

  it('weights 2:3:5 split 7 as 1 + 2 + 4; labels offset by the earlier parts\' identities', async () => {
    const { m, info } = await make({ sources: [{ source: src('a', { ids: 3 }), weight: 2 }, { source: src('b', { ids: 4 }), weight: 3 }, { source: src('c', { ids: 2 }), weight: 5 }] });
    expect(info.identities).to.equal(9);
    const b = await m.next(7);
    expect(b.keys.map((k) => k.split('|')[0])).to.deep.equal(['m0', 'm1', 'm1', 'm2', 'm2', 'm2', 'm2']);
    // a:0 → 0; b:0, b:1 → 3 + (0, 1); c:0..3 → 7 + (0, 1, 0, 1).
    expect(Array.from(b.labels!)).to.deep.equal([0, 3, 4, 7, 8, 7, 8]);
    expect(b.cacheable).to.equal(true);
    expect(b.cacheableSamples).to.equal(undefined);
    disposeBatch(b);
  });

  it('state()/restore() continues every part exactly', async () => {
    const o = { sources: [{ source: src('x', { count: 7 }) }, { source: src('y', { count: 3 }), weight: 0.5 }] };
    const { m: a } = await make(o);
    disposeBatch(await a.next(5));
    const st = JSON.parse(JSON.stringify(a.state()));
    const { m: b } = await make(o, 9);
    b.restore(st);
    for (const n of [5, 4, 9]) {
      const [x, y] = [await a.next(n), await b.next(n)];
      expect(y.keys).to.deep.equal(x.keys);
      expect(Array.from(y.images.dataSync())).to.deep.equal(Array.from(x.images.dataSync()));
      [x, y].forEach(disposeBatch);
    }
  });

  it('sizes: different part sizes need size:, which resizes every part', async () => {
    const o = { sources: [{ source: src('p', { size: 8 }) }, { source: src('q', { size: 6 }) }] };
    const { m } = await make(o);
    await m.next(4).then(() => expect.fail('should throw'), (e: Error) => expect(e.message).to.match(/part 0: 8×8, part 1: 6×6.*set size:/));
    const { m: r } = await make({ ...o, size: 12 });
    const b = await r.next(4);
    expect(b.images.shape).to.deep.equal([4, 12, 12, 3]);
    disposeBatch(b);
  });

  it('routes feedback to the part each key came from, keys unprefixed', async () => {
    fed.length = 0;
    const { m } = await make({ sources: [{ source: src('r') }, { source: src('s') }] });
    m.feedback!([sampleKey('m1|s:3'), sampleKey('m0|r:1'), sampleKey('m1|s:4')], Float32Array.from([0.5, 1, 2]));
    expect(fed).to.deep.equal([{ tag: 's', keys: ['s:3', 's:4'], signal: [0.5, 2] }, { tag: 'r', keys: ['r:1'], signal: [1] }]);
  });

  it('preset and weight errors are named', () => {
    expect(() => mixWeights({ preset: 'mix70_30', sources: [{ source: src('a') }] } as never)).to.throw(/needs exactly 2 sources/);
    expect(() => mixWeights({ preset: 'mix70_30', sources: [{ source: src('a') }, { source: src('b'), weight: 1 }] } as never)).to.throw(/sources\[1\]\.weight is set and so is preset/);
    expect(() => mixWeights({ sources: [{ source: src('a'), weight: 0 }] } as never)).to.throw(/every source has weight 0/);
    expect(mixOptions.safeParse({ preset: 'mix60_40', sources: [] }).success).to.equal(false);
  });

  it('real + pca-face fitted on the real part: 70/30 batches, generator latents freed, flat tensor count', async () => {
    const real = src('faces', { count: 12, size: 8, ids: 12 });
    const { m, info } = await make({
      preset: 'mix70_30', size: 8,
      sources: [{ source: real }, { source: { kind: 'pca-face', fitOn: real, size: 8, components: 4 } }],
    });
    expect(info.name).to.contain('pca-face (4 components fitted on 12 images of faces');
    const step = async () => { const b = await m.next(10); expect(b.keys.filter((k) => k.startsWith('m1|pca-face:'))).to.have.length(3); disposeBatch(b); };
    await step();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 4; i++) await step();
    expect(tf.memory().numTensors).to.equal(before);
    m.dispose();
  });
});
