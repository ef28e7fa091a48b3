import { expect } from 'chai';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { imagePath, parsePairsFile, parsePairsText } from '../../core/eval/pairs-file.js';
import { contiguousFolds } from '../../core/eval/verification.js';

// A View 2-shaped file with 2 sets of N = 2: per set 2 matched lines, then 2 mismatched lines (spec 7.2).
const VIEW2 = [
  '2\t2',
  'Abel_Pacheco\t1\t4', 'George_W_Bush\t10\t24', 'Ann\t1\tBob\t2', 'Cy\t3\tDee\t12345',
  'Eve\t2\t3', 'Fay\t1\t2', 'Gus\t1\tHal\t1', 'Ida\t7\tJo\t9',
  '',
].join('\n');

describe('pairs-file (strategy-specs 7.2, 7.7)', () => {
  it('imagePath is <name>/<name>_%04d.jpg (pads, never truncates)', () => {
    expect(imagePath('George_W_Bush', 10)).to.equal('George_W_Bush/George_W_Bush_0010.jpg');
    expect(imagePath('Cy', 12345)).to.equal('Cy/Cy_12345.jpg');
  });

  it('View 2: 3 fields = same, 4 fields = different, fold = set index', () => {
    const p = parsePairsText(VIEW2);
    expect(p).to.have.length(8);
    expect(p[0]).to.deep.equal({
      a: { name: 'Abel_Pacheco', index: 1, path: 'Abel_Pacheco/Abel_Pacheco_0001.jpg' },
      b: { name: 'Abel_Pacheco', index: 4, path: 'Abel_Pacheco/Abel_Pacheco_0004.jpg' },
      same: true, fold: 0,
    });
    expect(p[1]!.b.path).to.equal('George_W_Bush/George_W_Bush_0024.jpg');
    expect(p[3]).to.deep.equal({
      a: { name: 'Cy', index: 3, path: 'Cy/Cy_0003.jpg' }, b: { name: 'Dee', index: 12345, path: 'Dee/Dee_12345.jpg' },
      same: false, fold: 0,
    });
    expect(p.map((x) => x.same)).to.deep.equal([true, true, false, false, true, true, false, false]);
    expect(p.map((x) => x.fold)).to.deep.equal([0, 0, 0, 0, 1, 1, 1, 1]);
  });

  it('View 1: single count header, folds by the contiguous KFold rule', () => {
    // 3 matched + 3 mismatched = 6 pairs; 4 folds → sizes 2,2,1,1 (first 6 mod 4 = 2 folds get one extra).
    const text = '3\nA\t1\t2\nB\t1\t2\nC\t1\t2\nA\t1\tB\t1\nB\t2\tC\t1\nC\t2\tA\t2\n';
    const p = parsePairsText(text, { folds: 4 });
    expect(p.map((x) => x.same)).to.deep.equal([true, true, true, false, false, false]);
    expect(p.map((x) => x.fold)).to.deep.equal([0, 0, 1, 1, 2, 3]);
    expect(parsePairsText(text).map((x) => x.fold)).to.deep.equal([0, 1, 2, 3, 4, 5]); // default 10 folds, n < 10
  });

  it('RFW variant: no header, any order, contiguous folds (default 10)', () => {
    const lines = Array.from({ length: 12 }, (_, i) => (i % 3 === 0 ? `m.0a${i}\t1\tm.0b${i}\t2` : `m.0c${i}\t1\t2`));
    const p = parsePairsText(lines.join('\n'), { header: 'none' });
    expect(p).to.have.length(12);
    expect(p.map((x) => x.same)).to.deep.equal(lines.map((_, i) => i % 3 !== 0));
    expect(p.map((x) => x.fold)).to.deep.equal([0, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9]); // 12 = 2,2,1×8
    expect(p[0]!.b.path).to.equal('m.0b0/m.0b0_0002.jpg');
  });

  it('tolerates CRLF, blank lines and space separators; line numbers still count blank lines', () => {
    const p = parsePairsText('1 1\r\nA 1 2\r\n\r\nA 1  B 2\r\n\r\n');
    expect(p.map((x) => [x.a.path, x.b.path, x.same])).to.deep.equal([
      ['A/A_0001.jpg', 'A/A_0002.jpg', true], ['A/A_0001.jpg', 'B/B_0002.jpg', false],
    ]);
    expect(() => parsePairsText('1\t1\nA\t1\t2\n\nA\t1\n', { file: 'x.txt' })).to.throw('x.txt:4: expected 3 fields (name n1 n2) or 4 fields (name1 n1 name2 n2), got 2: "A\t1"');
  });

  it('malformed lines throw with file, line number and content', () => {
    const bad = (text: string, re: RegExp) => expect(() => parsePairsText(text, { file: 'pairs.txt' })).to.throw(re);
    bad('1\t1\nA\t1\t2\t3\t4\t5\nA\t1\tB\t1\n', /^pairs\.txt:2: expected 3 fields .* got 6: "A\t1\t2\t3\t4\t5"$/);
    bad('1\t1\nA\tone\t2\nA\t1\tB\t1\n', /pairs\.txt:2: image number "one" is not a positive integer: "A\tone\t2"/);
    bad('1\t1\nA\t0\t2\nA\t1\tB\t1\n', /pairs\.txt:2: image number "0"/);
    bad('1\t1\nA\t1\tB\t1\nA\t1\t2\n', /pairs\.txt:2: expected a matched pair \(name n1 n2\) at position 1 of set 1: "A\t1\tB\t1"/);
    bad('1\t1\nA\t1\t2\nA\t1\tB\t1\nC\t1\t2\n', /pairs\.txt:4: more pairs than the header promises \(1 × 2 × 1 = 2\): "C\t1\t2"/);
    bad('10\t300\nA\t1\t2\n', /pairs\.txt: 1 pairs but the header "10\t300" on line 1 promises 10 × 2 × 300 = 6000/);
    bad('10\t300\t7\n', /pairs\.txt:1: header must be/);
    bad('ten\t300\n', /pairs\.txt:1: header set count "ten"/);
    bad('A\t1\t2\n', /pairs\.txt:1: header must be/); // RFW file read as LFW: header required
    bad('', /pairs\.txt: empty pairs file/);
    bad('1\t1\n..\t1\t2\nA\t1\tB\t1\n', /invalid identity name "\.\."/);
    bad('1\t1\nA\t1\t2\nA\t1\tx\/y\t1\n', /invalid identity name "x\/y"/);
  });

  it('parsePairsFile names the file in errors', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'pairs-'));
    try {
      const f = path.join(dir, 'bad_pairs.txt');
      await writeFile(f, '1\t1\nA\t1\nA\t1\tB\t1\n');
      let err: Error | undefined;
      try { await parsePairsFile(f); } catch (e) { err = e as Error; }
      expect(err?.message).to.equal(`${f}:2: expected 3 fields (name n1 n2) or 4 fields (name1 n1 name2 n2), got 2: "A\t1"`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  describe('real LFW files (shared/data/lfw-deepfunneled)', () => {
    const dir = path.resolve('../shared/data/lfw-deepfunneled');
    const need = (ctx: Mocha.Context, file: string): void => {
      if (!existsSync(file)) {
        ctx.test!.title += ` (skipped: ${file} absent)`;
        ctx.skip();
      }
    };

    it('pairs.txt (View 2): 6000 pairs, 3000 same, 10 folds of 600, first pair Abel_Pacheco 1 4', async function () {
      const file = path.join(dir, 'pairs.txt');
      need(this, file);
      const p = await parsePairsFile(file);
      expect(p).to.have.length(6000);
      expect(p.filter((x) => x.same)).to.have.length(3000);
      const perFold = new Array<number>(10).fill(0);
      p.forEach((x) => perFold[x.fold]!++);
      expect(perFold).to.deep.equal(new Array(10).fill(600));
      expect(p.map((x) => x.fold)).to.deep.equal(Array.from(contiguousFolds(6000, 10))); // set k = pairs 600k…600k+599
      expect(p[0]).to.deep.equal({
        a: { name: 'Abel_Pacheco', index: 1, path: 'Abel_Pacheco/Abel_Pacheco_0001.jpg' },
        b: { name: 'Abel_Pacheco', index: 4, path: 'Abel_Pacheco/Abel_Pacheco_0004.jpg' },
        same: true, fold: 0,
      });
      expect([p[299]!.same, p[300]!.same, p[600]!.same]).to.deep.equal([true, false, true]);
      expect([p[5999]!.a.name, p[5999]!.b.name, p[5999]!.same, p[5999]!.fold]).to.deep.equal(['Slobodan_Milosevic', 'Sok_An', false, 9]);
    });

    it('pairsDevTrain.txt / pairsDevTest.txt (View 1): 1100 + 1100 and 500 + 500 pairs', async function () {
      const train = path.join(dir, 'pairsDevTrain.txt'), test = path.join(dir, 'pairsDevTest.txt');
      need(this, train);
      need(this, test);
      const a = await parsePairsFile(train), b = await parsePairsFile(test);
      expect([a.length, a.filter((x) => x.same).length, b.length, b.filter((x) => x.same).length]).to.deep.equal([2200, 1100, 1000, 500]);
      expect(b[0]!.a.path).to.equal('Abdullah_Gul/Abdullah_Gul_0013.jpg');
      expect(b.map((x) => x.fold)).to.deep.equal(Array.from(contiguousFolds(1000, 10)));
    });
  });
});
