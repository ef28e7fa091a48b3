import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import type { BuildContext } from '../../core/di/contribution.js';
import { decodeImage } from '../../core/images/decode.js';
import { contiguousFolds } from '../../core/eval/verification.js';
import type { VerificationPair } from '../../core/interfaces/pair-source.js';
import { stderrLogger } from '../../core/util/logger.js';
import { folderPairs } from '../../data-sources/folder-pairs/folder-pairs.js';
import { interleave } from '../../data-sources/folder-pairs/pair-sampling.js';
import { testContext, tmpDir } from '../helpers/fixtures.js';
import { synthJpeg } from '../helpers/jpegs.js';

const CELEBA = path.resolve('../shared/data/celeba-crops/images');

function ctx(): BuildContext {
  return testContext('.');
}

const identityOf = (k: string) => k.split('/')[0]!;
const choose2 = (n: number) => (n * (n - 1)) / 2;

/** Structural checks that hold for any folder-pairs list (plain JS: the CelebA list has 74k pairs). */
function checkPairs(pairs: readonly VerificationPair[]): void {
  const seen = new Set<string>();
  const problems: string[] = [];
  for (const p of pairs) {
    if (p.a === p.b) problems.push(`${p.a} paired with itself`);
    if ((identityOf(p.a) === identityOf(p.b)) !== p.same) problems.push(`${p.a} ${p.b} labelled same=${p.same}`);
    if (p.fold !== undefined) problems.push(`fold set on ${p.a} ${p.b}`);
    const k = [p.a, p.b].sort().join('|');
    if (seen.has(k)) problems.push(`duplicate pair ${k}`);
    seen.add(k);
  }
  expect(problems.slice(0, 5)).to.deep.equal([]);
}

describe('folder-pairs', () => {
  // Identities with 0…5 images (15 in all) and a non-image file, which the listing ignores.
  // By hand: genuine = C(1,2)+C(2,2)+C(3,2)+C(4,2)+C(5,2) = 0+1+3+6+10 = 20;
  // impostor space = (15² − (1+4+9+16+25)) / 2 = (225 − 55) / 2 = 85.
  let root = '';
  before(async () => {
    root = path.join(tmpDir('fpairs'), 'faces');
    const counts: Record<string, number> = { Ann: 1, Bob: 2, Cyd: 3, Dee: 4, Eve: 5, Empty: 0 };
    let c = 0;
    for (const [name, n] of Object.entries(counts)) {
      mkdirSync(path.join(root, name), { recursive: true });
      for (let i = 0; i < n; i++, c++) writeFileSync(path.join(root, name, `${name}_${i}.jpg`), await synthJpeg(16, [(c * 37) % 256, (c * 91) % 256, (c * 53) % 256]));
    }
    writeFileSync(path.join(root, 'Eve', 'notes.txt'), 'not an image');
  });

  const init = async (o: Partial<{ maxGenuinePerIdentity: number; impostorRatio: number; seed: number }> = {}) =>
    (await folderPairs.create({ root, size: 16, impostorRatio: 1, seed: 1, ...o }, ctx())).init();

  it('all genuine pairs (20 by hand), as many distinct impostor pairs, interleaved so every fold holds both', async () => {
    const { pairs, images } = await init();
    checkPairs(pairs);
    const genuine = pairs.filter((p) => p.same);
    expect(genuine).to.have.length(20);
    expect(pairs.filter((p) => !p.same)).to.have.length(20);
    // Every within-identity pair exactly once, e.g. all C(5,2) = 10 of Eve's.
    expect(genuine.filter((p) => identityOf(p.a) === 'Eve')).to.have.length(10);
    expect(genuine.filter((p) => identityOf(p.a) === 'Ann')).to.have.length(0);
    const fold = contiguousFolds(pairs.length, 10);
    for (let f = 0; f < 10; f++) {
      const inFold = pairs.filter((_, i) => fold[i] === f);
      expect(inFold.map((p) => p.same).sort(), `fold ${f}`).to.deep.equal([false, false, true, true]);
    }
    expect(images.every((k) => !k.endsWith('.txt'))).to.equal(true);
  });

  it('interleave puts genuine at k where ⌊(k+1)G/n⌋ > ⌊kG/n⌋ (G = 2, I = 3 → I I G I G)', () => {
    expect(interleave(['g1', 'g2'], ['i1', 'i2', 'i3'])).to.deep.equal(['i1', 'i2', 'g1', 'i3', 'g2']);
  });

  it('maxGenuinePerIdentity caps per identity: min(C(n,2), 3) summed = 0+1+3+3+3 = 10; ratio 2 → 20 impostors', async () => {
    const { pairs } = await init({ maxGenuinePerIdentity: 3, impostorRatio: 2 });
    checkPairs(pairs);
    const g = pairs.filter((p) => p.same);
    expect(g).to.have.length(10);
    expect(['Bob', 'Cyd', 'Dee', 'Eve'].map((id) => g.filter((p) => identityOf(p.a) === id).length)).to.deep.equal([1, 3, 3, 3]);
    expect(pairs.filter((p) => !p.same)).to.have.length(20);
  });

  it('near the whole impostor space (80 of 85) and beyond it (100 > 85)', async () => {
    const { pairs } = await init({ impostorRatio: 4 });
    checkPairs(pairs);
    expect(pairs.filter((p) => !p.same)).to.have.length(80);
    let err = '';
    try { await init({ impostorRatio: 5 }); } catch (e) { err = (e as Error).message; }
    expect(err).to.match(/impostorRatio 5 asks for 100 impostor pairs but .* \(15 images, 5 identities\) has only 85$/);
  });

  it('deterministic per seed; another seed draws other impostors (and the same genuine pairs)', async () => {
    const a = await init({ seed: 4 }), b = await init({ seed: 4 }), c = await init({ seed: 5 });
    expect(b.pairs).to.deep.equal(a.pairs);
    expect(b.listHash).to.equal(a.listHash);
    expect(c.pairs.filter((p) => !p.same)).to.not.deep.equal(a.pairs.filter((p) => !p.same));
    expect(c.pairs.filter((p) => p.same)).to.deep.equal(a.pairs.filter((p) => p.same));
    expect(c.listHash).to.not.equal(a.listHash);
  });

  it('load() decodes the named files', async () => {
    const src = await folderPairs.create({ root, size: 16, impostorRatio: 1, seed: 1 }, ctx());
    const { images } = await src.init();
    const t = await src.load(images.slice(0, 2));
    const got = t.dataSync();
    t.dispose();
    const want = await decodeImage(path.join(root, images[1]!), { size: 16 });
    expect(Array.from(got.subarray(16 * 16 * 3))).to.deep.equal(Array.from(want.data));
  });

  it('CelebA crops: counts match a hand count of the folder listing', async function () {
    if (!existsSync(CELEBA)) { console.warn(`    skipped: ${CELEBA} is absent (shared data not on this machine)`); this.skip(); }
    const sizes = readdirSync(CELEBA, { withFileTypes: true }).filter((d) => d.isDirectory())
      .map((d) => readdirSync(path.join(CELEBA, d.name)).filter((f) => f.toLowerCase().endsWith('.jpg')).length);
    const expectAll = sizes.reduce((s, n) => s + choose2(n), 0);
    const expectCapped = sizes.reduce((s, n) => s + Math.min(choose2(n), 20), 0);
    const make = async (o: Record<string, number>) => (await folderPairs.create({ root: CELEBA, size: 112, impostorRatio: 1, seed: 1, ...o }, ctx())).init();
    const all = await make({});
    expect(all.pairs.filter((p) => p.same)).to.have.length(expectAll);
    expect(all.pairs.filter((p) => !p.same)).to.have.length(expectAll);
    checkPairs(all.pairs);
    const capped = await make({ maxGenuinePerIdentity: 20 });
    expect(capped.pairs.filter((p) => p.same)).to.have.length(expectCapped);
    checkPairs(capped.pairs);
    expect((await make({ maxGenuinePerIdentity: 20 })).pairs).to.deep.equal(capped.pairs);
    console.log(`      CelebA crops: ${sizes.length} identities, ${sizes.reduce((a, b) => a + b, 0)} images, ${expectAll} genuine pairs (${expectCapped} with ≤ 20 per identity)`);
  });
});
