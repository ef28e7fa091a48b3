import { writeFileSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { z } from 'zod';
import { contribution } from '../../core/di/contribution.js';
import { inHoldoutPart, isHeldOut } from '../../core/data/holdout.js';
import { disposeBatch, sampleKey, type Batch, type DataSource } from '../../core/interfaces/data-source.js';
import { augment, augmentOptions } from '../../data-sources/augment/augment.js';
import { makeIdentityFolder, testContext, testContextWith, tmpDir } from '../helpers/fixtures.js';
import { imageFolder, imageFolderOptions } from '../../data-sources/image-folder/image-folder.js';

/** `count` distinct 4×6 images (pixel value = 1000·index + flat position: every column differs), labelled index mod 3. */
const partOptions = z.object({ count: z.number().int() });
class Part implements DataSource {
  private pos = 0;
  constructor(private readonly o: z.infer<typeof partOptions>) {}
  async init() { return { name: 'part', images: this.o.count, identities: 3, skipped: [], listHash: 'part' }; }
  async next(n: number): Promise<Batch> {
    const idx = Array.from({ length: n }, () => this.pos++ % this.o.count);
    const d = 4 * 6 * 3;
    const images = tf.tensor4d(Float32Array.from({ length: n * d }, (_, j) => 1000 * idx[Math.floor(j / d)]! + (j % d)), [n, 4, 6, 3]);
    return { images, keys: idx.map((i) => sampleKey(`part:${i}`)), cacheable: true, labels: Int32Array.from(idx, (i) => i % 3) };
  }
  state() { return this.pos; }
  restore(s: unknown) { this.pos = s as number; }
  dispose() {}
}
const part = contribution({ slot: 'data', kind: 'test-part', summary: 'test only', options: partOptions, async create(o) { return new Part(o); } });

async function make(pFlip: number, seed = 0) {
  const ctx = testContextWith(tmpDir('augment'), seed, part);
  const a = await augment.create(augmentOptions.parse({ source: { kind: 'test-part', count: 40 }, pFlip }), ctx);
  return { a, info: await a.init() };
}

/** Image i of the part as nested arrays [h][w][c], mirrored left-right if asked (written out, not through tf). */
function expected(i: number, flipped: boolean): number[][][] {
  return Array.from({ length: 4 }, (_, y) => Array.from({ length: 6 }, (_, x) => {
    const sx = flipped ? 5 - x : x;
    return Array.from({ length: 3 }, (_, c) => 1000 * i + (y * 6 + sx) * 3 + c);
  }));
}

describe('augment data source (flips)', () => {
  it('flips the images it keys "|flip", leaves the others, keeps labels and names the unflipped original', async () => {
    const { a, info } = await make(0.5, 3);
    expect(info.images).to.equal(40);
    expect(info.name).to.contain('flipped with p = 0.5');
    let flips = 0, seen = 0;
    for (let n = 0; n < 10; n++) {
      const b = await a.next(8);
      const arr = b.images.arraySync() as number[][][][];
      b.keys.forEach((k, j) => {
        const m = /^part:(\d+)(\|flip)?$/.exec(k)!;
        const i = Number(m[1]), flipped = m[2] !== undefined;
        expect(arr[j], k).to.deep.equal(expected(i, flipped));
        expect(b.labels![j]).to.equal(i % 3);
        expect(b.unflipped?.[j] ?? null).to.equal(flipped ? `part:${i}` : null);
        flips += flipped ? 1 : 0; seen++;
      });
      disposeBatch(b);
    }
    // 80 draws at p = 0.5: a binomial 95 % range is 31–49.
    expect(flips).to.be.within(25, 55);
    expect(seen).to.equal(80);
  });

  it('p = 0 passes the source through; p = 1 flips every sample', async () => {
    const none = (await make(0)).a, all = (await make(1)).a;
    const b0 = await none.next(5), b1 = await all.next(5);
    expect(b0.keys).to.deep.equal(['part:0', 'part:1', 'part:2', 'part:3', 'part:4']);
    expect(b0.unflipped).to.equal(undefined);
    expect(b1.keys.every((k) => k.endsWith('|flip'))).to.equal(true);
    expect(b1.images.arraySync()[2]).to.deep.equal(expected(2, true));
    disposeBatch(b0); disposeBatch(b1);
  });

  it('a restored state gives the same flips and images; the listHash names pFlip; the tensor count stays flat', async () => {
    const { a, info } = await make(0.5, 9);
    const other = await make(0.3, 9);
    expect(other.info.listHash).to.not.equal(info.listHash);
    disposeBatch(await a.next(8));
    const saved = a.state();
    const b1 = await a.next(8);
    const keys1 = [...b1.keys], img1 = b1.images.arraySync();
    disposeBatch(b1);
    const { a: c } = await make(0.5, 9);
    c.restore(saved);
    const b2 = await c.next(8);
    expect(b2.keys).to.deep.equal(keys1);
    expect(b2.images.arraySync()).to.deep.equal(img1);
    disposeBatch(b2);
    const before = tf.memory().numTensors;
    for (let n = 0; n < 5; n++) disposeBatch(await a.next(8));
    expect(tf.memory().numTensors).to.equal(before);
  });
});

describe('holdout split by file name', () => {
  it('holds a name out by the first 32 bits of its SHA-256 (values from Python hashlib)', () => {
    // hashlib.sha256(name).digest()[:4] as a fraction of 2^32: 0.0306, 0.3149, 0.5901.
    expect(isHeldOut('1_0_0_20161219140623097.jpg.chip.jpg', 0.031)).to.equal(true);
    expect(isHeldOut('1_0_0_20161219140623097.jpg.chip.jpg', 0.030)).to.equal(false);
    expect(isHeldOut('a.jpg', 0.32)).to.equal(true);
    expect(isHeldOut('a.jpg', 0.31)).to.equal(false);
    expect(isHeldOut('7201/001085.jpg', 0.5)).to.equal(false);
    expect(inHoldoutPart('7201/001085.jpg', { share: 0.5, use: 'train' })).to.equal(true);
    expect(inHoldoutPart('7201/001085.jpg', { share: 0.5, use: 'holdout' })).to.equal(false);
    expect(inHoldoutPart('anything', undefined)).to.equal(true);
  });

  it('splits 4,000 names about by the share, the two parts disjoint and together complete', () => {
    const names = Array.from({ length: 4000 }, (_, i) => `img_${i}.jpg`);
    const train = names.filter((n) => inHoldoutPart(n, { share: 0.25, use: 'train' }));
    const held = names.filter((n) => inHoldoutPart(n, { share: 0.25, use: 'holdout' }));
    expect(train.length + held.length).to.equal(4000);
    expect(new Set([...train, ...held]).size).to.equal(4000);
    // Binomial(4000, 0.25): mean 1000, std 27.
    expect(held.length).to.be.within(900, 1100);
  });
});

describe('image-folder identityList and holdout', () => {
  it('keeps only the listed identities, or all but them; a holdout split by file name is the same in every source', async () => {
    const dir = tmpDir('id-list');
    const root = await makeIdentityFolder(path.join(dir, 'faces'), 4, 3, 16);
    const list = path.join(dir, 'held-out.txt');
    writeFileSync(list, '# two of four\nPerson_2\n\nPerson_4   # trailing comment\n');
    const open = async (extra: Record<string, unknown>) => {
      const src = await imageFolder.create(imageFolderOptions.parse({ root, size: 16, ...extra }), testContext(dir, 1));
      const info = await src.init();
      const b = await src.next(info.images);
      const keys = [...b.keys].sort();
      disposeBatch(b);
      return { info, keys };
    };
    const listed = await open({ identityList: { file: list, use: 'listed' } });
    expect(listed.info.identities).to.equal(2);
    expect(listed.keys.map((k) => k.split('/')[0])).to.deep.equal(['image-folder:Person_2', 'image-folder:Person_2', 'image-folder:Person_2', 'image-folder:Person_4', 'image-folder:Person_4', 'image-folder:Person_4']);
    const unlisted = await open({ identityList: { file: list, use: 'unlisted' } });
    expect(unlisted.info.identities).to.equal(2);
    expect(new Set(unlisted.keys.map((k) => k.split('/')[0]))).to.deep.equal(new Set(['image-folder:Person_1', 'image-folder:Person_3']));
    const train = await open({ holdout: { share: 0.5, use: 'train' } });
    const held = await open({ holdout: { share: 0.5, use: 'holdout' } });
    expect(train.info.images + held.info.images).to.equal(12);
    const files = [...train.keys, ...held.keys].map((k) => k.replace('image-folder:', ''));
    expect(new Set(files).size).to.equal(12);
    for (const k of held.keys) expect(isHeldOut(k.replace('image-folder:', ''), 0.5)).to.equal(true);
    expect(imageFolderOptions.safeParse({ root, layout: 'flat', identityList: { file: list, use: 'listed' } }).success, 'a flat folder has no identities to list').to.equal(false);
  });
});
