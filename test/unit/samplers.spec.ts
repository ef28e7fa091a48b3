import path from 'node:path';
import { expect } from 'chai';
import { EpochSampler } from '../../core/data/epoch-sampler.js';
import { GeneralPlusPkSampler } from '../../core/data/general-plus-pk-sampler.js';
import { PkSampler } from '../../core/data/pk-sampler.js';
import { splitByWeights } from '../../core/data/split.js';
import { imageFolder, imageFolderOptions } from '../../data-sources/image-folder/image-folder.js';
import { disposeBatch } from '../../core/interfaces/data-source.js';
import { makeIdentityFolder, testContext, tmpDir } from '../helpers/fixtures.js';

// 12 identities with 1..6 images each (sizes cycle 1,2,3,4,5,6), samples listed identity by identity.
const SIZES = [1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6];
const LABELS = SIZES.flatMap((n, id) => Array.from({ length: n }, () => id));
const membersOf = (id: number) => LABELS.flatMap((l, i) => (l === id ? [i] : []));
const copy = <T>(x: T): T => JSON.parse(JSON.stringify(x)) as T;

describe('batch samplers', () => {
  describe('PkSampler (P identities × K images)', () => {
    it('every batch holds exactly P distinct identities with K images each; one epoch visits each identity once', () => {
      const P = 4, K = 3;
      const s = new PkSampler(LABELS, P, K, 7);
      const seen = new Map<number, number>();
      for (let b = 0; b < 3; b++) { // 12 identities / P = 3 batches per epoch
        const batch = s.take(P * K);
        expect(batch).to.have.length(12);
        const ids = batch.map((i) => LABELS[i]!);
        for (let g = 0; g < P; g++) {
          const group = ids.slice(g * K, (g + 1) * K);
          expect(new Set(group).size, 'one identity per group of K').to.equal(1);
          const id = group[0]!;
          seen.set(id, (seen.get(id) ?? 0) + 1);
          const imgs = batch.slice(g * K, (g + 1) * K);
          const members = membersOf(id);
          if (members.length >= K) expect(new Set(imgs).size, `identity ${id}: K distinct images`).to.equal(K);
          // TFace's rule for small identities: the list repeated, cut to K.
          else expect(imgs).to.deep.equal(Array.from({ length: K }, (_, j) => members[j % members.length]));
        }
        expect(new Set(ids).size).to.equal(P);
      }
      expect([...seen.keys()].sort((a, b) => a - b)).to.deep.equal([...Array(12).keys()]);
      expect([...seen.values()].every((c) => c === 1)).to.equal(true);
    });

    it('drops the I mod P identities left at the end of a shuffle (10 ids, P = 4: 2 batches per epoch)', () => {
      const labels = LABELS.filter((l) => l < 10);
      const s = new PkSampler(labels, 4, 2, 3);
      const epoch1 = [s.take(8), s.take(8)].flat().map((i) => labels[i]!);
      const ids = new Set(epoch1);
      expect(ids.size, '8 distinct identities in the first epoch').to.equal(8);
      expect((s.state() as { epoch: number }).epoch).to.equal(0);
      s.take(8);
      expect((s.state() as { epoch: number }).epoch).to.equal(1);
    });

    it('resumes exactly from state() (JSON round trip) and differs by seed', () => {
      const a = new PkSampler(LABELS, 3, 4, 11);
      for (let i = 0; i < 5; i++) a.take(12);
      const st = copy(a.state());
      const want = Array.from({ length: 9 }, () => a.take(12));
      const b = new PkSampler(LABELS, 3, 4, 999);
      b.restore(st);
      expect(Array.from({ length: 9 }, () => b.take(12))).to.deep.equal(want);
      const c = new PkSampler(LABELS, 3, 4, 12);
      const d = new PkSampler(LABELS, 3, 4, 11);
      expect(c.take(12)).to.not.deep.equal(d.take(12));
    });

    it('names the problem: wrong batch size, too few identities', () => {
      const s = new PkSampler(LABELS, 4, 3, 0);
      expect(() => s.take(16)).to.throw(/batch size 16 ≠ identities × perIdentity = 4 × 3 = 12/);
      expect(() => new PkSampler(LABELS, 13, 2, 0)).to.throw(/13 identities per batch, but the data has only 12/);
    });
  });

  describe('GeneralPlusPkSampler (EKD batch)', () => {
    it('B − P·K uniform samples first (each once per epoch), then a P×K block', () => {
      const s = new GeneralPlusPkSampler(LABELS, 2, 3, 5);
      expect(s.generalCount(10)).to.equal(4);
      const general: number[] = [];
      for (let b = 0; b < 11; b++) { // 42 samples / 4 per batch: 10.5 batches for one epoch
        const batch = s.take(10);
        general.push(...batch.slice(0, 4));
        const pk = batch.slice(4).map((i) => LABELS[i]!);
        expect(new Set(pk.slice(0, 3)).size).to.equal(1);
        expect(new Set(pk.slice(3)).size).to.equal(1);
        expect(pk[0]).to.not.equal(pk[3]);
      }
      expect(new Set(general.slice(0, LABELS.length)).size, 'the uniform part covers every sample once per epoch').to.equal(LABELS.length);
      const st = copy(s.state());
      const want = [s.take(10), s.take(10)];
      const r = new GeneralPlusPkSampler(LABELS, 2, 3, 0);
      r.restore(st);
      expect([r.take(10), r.take(10)]).to.deep.equal(want);
      expect(() => s.take(6)).to.throw(/leaves no room for the uniform part/);
    });
  });

  describe('splitByWeights (largest remainder)', () => {
    // By hand: 16·0.7 = 11.2, 16·0.3 = 4.8 → floors 11 + 4, the one left goes to .8.
    it('16 at 70/30 → 11 + 5', () => expect(splitByWeights(16, [0.7, 0.3])).to.deep.equal([11, 5]));
    // 7·(0.2, 0.3, 0.5) = 1.4, 2.1, 3.5 → 1 + 2 + 3, the one left goes to .5.
    it('7 at 2:3:5 → 1 + 2 + 4', () => expect(splitByWeights(7, [2, 3, 5])).to.deep.equal([1, 2, 4]));
    // Equal remainders: ties go to the earlier part.
    it('10 at 1:1:1 → 4 + 3 + 3', () => expect(splitByWeights(10, [1, 1, 1])).to.deep.equal([4, 3, 3]));
    it('zero weights get nothing; bad weights are refused', () => {
      expect(splitByWeights(5, [1, 0])).to.deep.equal([5, 0]);
      expect(() => splitByWeights(5, [0, 0])).to.throw(/positive sum/);
      expect(() => splitByWeights(5, [1, -1])).to.throw(/≥ 0/);
    });
  });

  describe('image-folder sampler option', () => {
    it('defaults to uniform (the EpochSampler stream, unchanged)', async () => {
      const dir = tmpDir('sampler-uniform');
      const root = await makeIdentityFolder(path.join(dir, 'faces'), 3, 3, 16);
      const o = imageFolderOptions.parse({ root, size: 16 });
      expect(o.sampler).to.deep.equal({ kind: 'uniform' });
      const src = await imageFolder.create(o, testContext(dir, 4));
      await src.init();
      const b = await src.next(9);
      disposeBatch(b);
      const ref = new EpochSampler(9, 4).take(9);
      // Keys are listed in sorted order: index i ↔ Person_{⌊i/3⌋+1}_{i mod 3 + 1}.
      expect(b.keys).to.deep.equal(ref.map((i) => `image-folder:${path.join(`Person_${Math.floor(i / 3) + 1}`, `Person_${Math.floor(i / 3) + 1}_000${(i % 3) + 1}.jpg`)}`));
    });

    it('pk gives P identities × K images per batch, with labels', async () => {
      const dir = tmpDir('sampler-pk');
      const root = await makeIdentityFolder(path.join(dir, 'faces'), 4, 3, 16);
      const src = await imageFolder.create(imageFolderOptions.parse({ root, size: 16, sampler: { kind: 'pk', identities: 2, perIdentity: 3 } }), testContext(dir, 1));
      await src.init();
      for (let i = 0; i < 3; i++) {
        const b = await src.next(6);
        const l = Array.from(b.labels!);
        expect(new Set(l.slice(0, 3)).size).to.equal(1);
        expect(new Set(l.slice(3)).size).to.equal(1);
        expect(l[0]).to.not.equal(l[3]);
        expect(new Set(b.keys).size, 'K distinct images (each identity has 3)').to.equal(6);
        disposeBatch(b);
      }
      await src.next(5).then(() => expect.fail('should throw'), (e: Error) => expect(e.message).to.contain('batch size 5'));
      src.dispose();
    });

    it('rejects an unknown sampler kind at validation', () => {
      const r = imageFolderOptions.safeParse({ root: '.', sampler: { kind: 'pq' } });
      expect(r.success).to.equal(false);
    });
  });
});
