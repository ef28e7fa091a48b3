import { existsSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { PREPROCESSING_VERSION } from '../../core/cache/preprocessing-version.js';
import { embedImages, sharedEmbeddingCacheFile, type EvalSettings, type PairSet } from '../../core/eval/evaluate.js';
import { sampleKey, type SampleKey } from '../../core/interfaces/data-source.js';
import type { PairSource, VerificationPair } from '../../core/interfaces/pair-source.js';
import { hashJson } from '../../core/util/hash.js';
import { tmpDir } from '../helpers/fixtures.js';

const SETTINGS: EvalSettings = { flip: false, batchSize: 2, far: [0.01] };
const WEIGHTS = 'fake-teacher-weights';

/**
 * An in-memory pair source standing in for lfw-pairs: image i is 4×4 pixels of the colour
 * (i+1)·(1, 2, 3), scaled by `alignZoom` (so an alignment option changes the prepared pixels).
 * `buggy` mimics the batched-alignment bug: every image of a batch after the first comes out black.
 */
class FakePairs implements PairSource {
  readonly name = 'fake-pairs';
  readonly protocol = 'fake';
  buggy = false;
  constructor(readonly o: { align: 'none' | 'five-point'; alignZoom: number }) {}

  async init(): Promise<{ pairs: VerificationPair[]; images: SampleKey[]; listHash: string }> {
    const images = [0, 1, 2, 3].map((i) => sampleKey(`img${i}`));
    const pairs: VerificationPair[] = [{ a: images[0]!, b: images[1]!, same: true }, { a: images[2]!, b: images[3]!, same: false }];
    // As lfw-pairs hashes its list: pairs file, count, the options that shape the images, the first pair.
    const listHash = hashJson({ file: 'pairs.txt', pairs: pairs.length, o: this.o, first: pairs[0] });
    return { pairs, images, listHash };
  }

  async load(keys: readonly SampleKey[]): Promise<tf.Tensor4D> {
    const colours = keys.map((k, j) => {
      const i = Number(String(k).slice(3)) + 1;
      const s = this.buggy && j > 0 ? 0 : i * this.o.alignZoom;
      return [s, 2 * s, 3 * s];
    });
    return tf.tidy(() => tf.mul(tf.ones([keys.length, 4, 4, 3]), tf.tensor4d(colours.flat(), [keys.length, 1, 1, 3])) as tf.Tensor4D);
  }

  dispose(): void {}
}

/** Embedding = per-channel mean plus a constant, so no row is zero; counts the images it embeds. */
function countingEmbed() {
  const f = Object.assign(async (x: tf.Tensor4D) => { f.calls += x.shape[0]; return tf.tidy(() => tf.add(tf.mean(x, [1, 2]), 1) as tf.Tensor2D); }, { calls: 0 });
  return f;
}

async function pairSet(source: FakePairs): Promise<PairSet> {
  const r = await source.init();
  return { source, pairs: r.pairs, images: r.images, listHash: r.listHash };
}

/** The shared cache file as `evaluateModels` names it (core/engine/run.ts). */
function cacheFileOf(dir: string, set: PairSet, version = PREPROCESSING_VERSION): string {
  return sharedEmbeddingCacheFile(dir, 'teacher-fake', hashJson([set.listHash, WEIGHTS, SETTINGS.flip]), version);
}

describe('cache: evaluation embeddings are keyed by preprocessing', () => {
  it('a second embedding of the same set is a cache hit (the model is not called)', async () => {
    const dir = tmpDir('cache-eval');
    const set = await pairSet(new FakePairs({ align: 'five-point', alignZoom: 1 }));
    const embed = countingEmbed();
    const file = cacheFileOf(dir, set);
    const first = await embedImages(set, embed, SETTINGS, file, WEIGHTS);
    expect(embed.calls).to.equal(4);
    expect(existsSync(file) && existsSync(file + '.json'), 'cache written').to.equal(true);
    expect(path.dirname(file)).to.equal(path.join(dir, 'eval-embeddings'));
    const again = await embedImages(set, embed, SETTINGS, file, WEIGHTS);
    expect(embed.calls, 'cache hit').to.equal(4);
    expect(again.seconds).to.equal(0);
    expect(Array.from(again.table.data)).to.deep.equal(Array.from(first.table.data));
  });

  it('changing an alignment option gives a new entry, never the stale one', async () => {
    const dir = tmpDir('cache-eval');
    const embed = countingEmbed();
    const zoom1 = await pairSet(new FakePairs({ align: 'five-point', alignZoom: 1 }));
    const zoom2 = await pairSet(new FakePairs({ align: 'five-point', alignZoom: 0.5 }));
    const unaligned = await pairSet(new FakePairs({ align: 'none', alignZoom: 1 }));
    expect(new Set([zoom1.listHash, zoom2.listHash, unaligned.listHash]).size, 'the options enter the list hash').to.equal(3);
    const a = await embedImages(zoom1, embed, SETTINGS, cacheFileOf(dir, zoom1), WEIGHTS);
    expect(embed.calls).to.equal(4);
    // Another option: another file, computed afresh with the new images.
    expect(cacheFileOf(dir, zoom2)).to.not.equal(cacheFileOf(dir, zoom1));
    const b = await embedImages(zoom2, embed, SETTINGS, cacheFileOf(dir, zoom2), WEIGHTS);
    expect(embed.calls, 'recomputed for the new option').to.equal(8);
    expect(Array.from(b.table.data)).to.not.deep.equal(Array.from(a.table.data));
    expect(b.table.row(zoom2.images[0]!)[0]).to.be.closeTo((0.5 + 1) / Math.hypot(1.5, 2, 2.5), 1e-6);
    // Both entries stay valid side by side: each option hits its own file.
    const a2 = await embedImages(zoom1, embed, SETTINGS, cacheFileOf(dir, zoom1), WEIGHTS);
    const b2 = await embedImages(zoom2, embed, SETTINGS, cacheFileOf(dir, zoom2), WEIGHTS);
    expect(embed.calls, 'both hits').to.equal(8);
    expect(Array.from(a2.table.data)).to.deep.equal(Array.from(a.table.data));
    expect(Array.from(b2.table.data)).to.deep.equal(Array.from(b.table.data));
    // Even handed a file of other options (a caller with a coarser file key), the tag refuses it.
    const coarse = path.join(dir, 'eval-embeddings', 'coarse.embeddings.f32');
    await embedImages(zoom1, embed, SETTINGS, coarse, WEIGHTS);
    expect(embed.calls).to.equal(12);
    const c = await embedImages(zoom2, embed, SETTINGS, coarse, WEIGHTS);
    expect(embed.calls, 'a same-named file of other options is not reused').to.equal(16);
    expect(Array.from(c.table.data), 'the new option\'s values, not the stale ones').to.deep.equal(Array.from(b.table.data));
    const d = await embedImages(unaligned, embed, SETTINGS, coarse, WEIGHTS);
    expect(embed.calls, 'align none vs five-point: another entry too').to.equal(20);
    expect(d.seconds).to.be.greaterThan(0);
  });

  it('a bump of the preprocessing version gives a new computation, never the stale value', async () => {
    const dir = tmpDir('cache-eval');
    const source = new FakePairs({ align: 'five-point', alignZoom: 1 });
    const set = await pairSet(source);
    const embed = countingEmbed();
    // Version 1 of the preparation code has the batched-alignment bug; its wrong embeddings are cached.
    source.buggy = true;
    const stale = await embedImages(set, embed, SETTINGS, cacheFileOf(dir, set, 1), WEIGHTS, undefined, 1);
    expect(embed.calls).to.equal(4);
    // The fix ships with version 2: another file name, and the tag would refuse the old file anyway.
    source.buggy = false;
    expect(cacheFileOf(dir, set, 2)).to.not.equal(cacheFileOf(dir, set, 1));
    const fixed = await embedImages(set, embed, SETTINGS, cacheFileOf(dir, set, 2), WEIGHTS, undefined, 2);
    expect(embed.calls, 'recomputed under the new version').to.equal(8);
    const sameFile = await embedImages(set, embed, SETTINGS, cacheFileOf(dir, set, 1), WEIGHTS, undefined, 2);
    expect(embed.calls, 'the version-1 file is not read under version 2').to.equal(12);
    const fresh = await embedImages(set, countingEmbed(), SETTINGS, undefined, WEIGHTS);
    expect(Array.from(fixed.table.data)).to.deep.equal(Array.from(fresh.table.data));
    expect(Array.from(sameFile.table.data)).to.deep.equal(Array.from(fresh.table.data));
    expect(Array.from(fixed.table.data)).to.not.deep.equal(Array.from(stale.table.data));
    // And version 2 now hits its own entry.
    await embedImages(set, embed, SETTINGS, cacheFileOf(dir, set, 2), WEIGHTS, undefined, 2);
    expect(embed.calls).to.equal(12);
  });

  it('the default version is PREPROCESSING_VERSION, in the file name and the tag', async () => {
    const dir = tmpDir('cache-eval');
    const set = await pairSet(new FakePairs({ align: 'none', alignZoom: 1 }));
    const file = sharedEmbeddingCacheFile(dir, 'teacher-fake', 'abcdef0123456789abcdef');
    expect(path.basename(file)).to.equal(`teacher-fake-abcdef0123456789-p${PREPROCESSING_VERSION}.embeddings.f32`);
    const embed = countingEmbed();
    await embedImages(set, embed, SETTINGS, file, WEIGHTS);
    await embedImages(set, embed, SETTINGS, file, WEIGHTS, undefined, PREPROCESSING_VERSION);
    expect(embed.calls, 'explicit current version hits the default one').to.equal(4);
    await embedImages(set, embed, SETTINGS, file, WEIGHTS, undefined, PREPROCESSING_VERSION + 1);
    expect(embed.calls).to.equal(8);
  });
});
