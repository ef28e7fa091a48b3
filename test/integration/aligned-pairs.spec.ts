// folder-pairs and group-pairs with alignment and identity / file-name splits: the protocols of
// examples/reference/celeba-heldout.yaml and utkface-groups.yaml on real faces from ../shared/data.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { isHeldOut } from '../../core/data/holdout.js';
import { templateFor } from '../../core/images/align.js';
import { FaceLandmarker } from '../../core/images/landmarks.js';
import { folderPairs } from '../../data-sources/folder-pairs/folder-pairs.js';
import { groupPairs } from '../../data-sources/group-pairs/group-pairs.js';
import { readIdentityList } from '../../data-sources/image-folder/image-folder.js';
import { testContext, tmpDir } from '../helpers/fixtures.js';

const CELEBA = path.resolve('../shared/data/celeba-aligned-identities/images');
const UTK = path.resolve('../shared/data/utkface-112');
const HELD_OUT = path.resolve('examples/reference/celeba-heldout-identities.txt');

/** Median and worst distance (px) of the eyes the landmark net finds in aligned faces from the template's eyes. */
async function eyeErrors(images: tf.Tensor4D): Promise<{ median: number; worst: number }> {
  const lm = await FaceLandmarker.load();
  try {
    const size = images.shape[1];
    const p = await lm.fivePoints(images, Array.from({ length: images.shape[0] }, () => ({ x: 0, y: 0, width: size, height: size })));
    const t = templateFor(size);
    const e = p.flatMap((q) => [0, 1].map((k) => Math.hypot(q[k]![0] - t[k]![0], q[k]![1] - t[k]![1]))).sort((a, b) => a - b);
    return { median: e[Math.floor(e.length / 2)]!, worst: e.at(-1)! };
  } finally {
    lm.dispose();
  }
}

describe('aligned verification pairs with held-out splits', function () {
  this.timeout(300_000);

  it('folder-pairs over the held-out CelebA identities only, 5-point aligned: the eyes land on the template', async function () {
    if (!existsSync(CELEBA)) { console.log(`    skipped: ${CELEBA} is absent`); this.skip(); }
    const held = await readIdentityList(HELD_OUT);
    expect(held.size).to.equal(65);
    const o = folderPairs.options.parse({
      root: CELEBA, identityList: { file: HELD_OUT, use: 'listed' }, maxGenuinePerIdentity: 5,
      align: 'five-point', alignBox: 0.5, alignCentre: [0.5, 0.57], size: 112,
    });
    const src = await folderPairs.create(o, testContext(tmpDir('heldout-pairs')));
    const init = await src.init();
    expect(init.pairs.filter((p) => p.same)).to.have.length(65 * 5);
    expect(init.pairs).to.have.length(2 * 65 * 5);
    for (const k of init.images) expect(held.has(k.split('/')[0]!), k).to.equal(true);
    expect(src.protocol).to.contain('identities listed in celeba-heldout-identities.txt').and.contain('5-point aligned');
    const x = await src.load(init.images.slice(0, 6));
    expect(x.shape).to.deep.equal([6, 112, 112, 3]);
    const err = await eyeErrors(x);
    x.dispose();
    src.dispose();
    expect(err.median, 'median eye error (px)').to.be.below(4);
    expect(err.worst, 'worst eye error (px)').to.be.below(8);
    // The same list, unaligned, gives other pairs' images (centre crop): the list hash tells them apart.
    const plain = await (await folderPairs.create(folderPairs.options.parse({ root: CELEBA, identityList: { file: HELD_OUT, use: 'listed' }, maxGenuinePerIdentity: 5, size: 112 }), testContext(tmpDir('heldout-plain')))).init();
    expect(plain.pairs).to.deep.equal(init.pairs);
    expect(plain.listHash).to.not.equal(init.listHash);
  });

  it('group-pairs on the held-out half of UTKFace, aligned: every image from that half, each group balanced', async function () {
    if (!existsSync(UTK)) { console.log(`    skipped: ${UTK} is absent`); this.skip(); }
    const o = groupPairs.options.parse({
      root: `${UTK}/images`, labels: `${UTK}/labels.csv`, groupColumn: 'race', pairsPerGroup: 10,
      holdout: { share: 0.5, use: 'holdout' }, align: 'five-point', alignBox: 0.8, size: 112,
    });
    const src = await groupPairs.create(o, testContext(tmpDir('utk-held')));
    const init = await src.init();
    const files = [...new Set(init.images.map((k) => /^group-pairs:(.+)#\d+$/.exec(k)![1]!))];
    for (const f of files) expect(isHeldOut(f, 0.5), f).to.equal(true);
    const groups = new Map<string, number>();
    for (const p of init.pairs) groups.set(p.group!, (groups.get(p.group!) ?? 0) + 1);
    expect([...groups.values()]).to.deep.equal(Array(groups.size).fill(20));
    const race = new Map(readFileSync(`${UTK}/labels.csv`, 'utf8').trim().split('\n').slice(1).map((l) => { const c = l.split(','); return [c[0]!, c[3]!] as const; }));
    for (const p of init.pairs) expect(race.get(/^group-pairs:(.+)#\d+$/.exec(p.a)![1]!)).to.equal(p.group);
    const genuine = init.pairs.find((p) => p.same)!;
    const x = await src.load([genuine.a, genuine.b]);
    expect(x.shape).to.deep.equal([2, 112, 112, 3]);
    const [a, b] = tf.unstack(x);
    const diff = tf.mean(tf.abs(tf.sub(a!, b!))).dataSync()[0]!;
    tf.dispose([x, a!, b!]);
    src.dispose();
    expect(diff, 'the two views of a genuine pair differ').to.be.above(1);
  });
});
