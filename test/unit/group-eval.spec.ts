import { existsSync, readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { evaluateGroups } from '../../core/eval/groups.js';
import { groupPairs } from '../../data-sources/group-pairs/group-pairs.js';
import { lfwPairs } from '../../data-sources/lfw-pairs/lfw-pairs.js';
import { testContext, tmpDir } from '../helpers/fixtures.js';

const LFW = '../shared/data/lfw-deepfunneled';
const UTK = '../shared/data/utkface-112';

/** Skips the test, saying which shared data is missing. */
function needs(ctx: Mocha.Context, ...files: string[]): void {
  const missing = files.filter((f) => !existsSync(f));
  if (missing.length === 0) return;
  ctx.test!.title += ` (skipped: ${missing.join(', ')} absent)`;
  ctx.skip();
}

/** n genuine at d = 0.5 and n impostor at d = 1.5, then `flip` of them moved across the threshold. */
function groupPairsOf(group: string, n: number, badImpostors: number, badGenuine: number) {
  const d: number[] = [], same: boolean[] = [];
  for (let i = 0; i < n; i++) { d.push(i < badGenuine ? 2.0 : 0.5); same.push(true); }
  for (let i = 0; i < n; i++) { d.push(i < badImpostors ? 0.3 : 1.5); same.push(false); }
  return { d, same, groups: d.map(() => group) };
}

describe('per-group metrics (strategy-specs 7.7)', () => {
  it('benchmark groups: per-group accuracy, mean, STD (ddof 1) and SER as numpy computes them', () => {
    // A: 1 of 20 wrong → 0.95; B: 2 of 20 → 0.90; C: 1 of 40 → 0.975 (python3 test/fixtures/ablation_stats.py).
    const parts = [groupPairsOf('A', 10, 1, 0), groupPairsOf('B', 10, 2, 0), groupPairsOf('C', 20, 0, 1)];
    const d = parts.flatMap((p) => p.d), same = parts.flatMap((p) => p.same), groups = parts.flatMap((p) => p.groups);
    const predictions = d.map((x) => x < 1);
    const r = evaluateGroups({ attribute: 'test', mode: 'benchmark' }, groups, d, same, predictions, { stdDdof: 1, thresholdMode: 'singleBest' });
    const acc = r.accuracy!;
    expect(acc.accuracies).to.deep.equal({ C: 0.975, A: 0.95, B: 0.9 });
    expect(acc.mean).to.be.closeTo(0.9416666666666668, 1e-12);
    expect(acc.std!).to.be.closeTo(0.038188130791298645, 1e-12);
    expect(acc.ser!).to.be.closeTo(3.9999999999999956, 1e-9);
    expect(acc.ddof).to.equal(1);
    // The breakdown counts the given decisions: B has 2 false positives of 10 impostors.
    const b = r.breakdown.find((x) => x.group === 'B')!;
    expect([b.genuine, b.impostor, b.truePositives, b.falsePositives, b.tpr, b.fpr]).to.deep.equal([10, 10, 10, 2, 1, 0.2]);
    expect(r.breakdown.map((x) => x.group)).to.deep.equal(['C', 'A', 'B']);
    // ddof 0 and a group too small for 10 folds.
    const small = evaluateGroups({ attribute: 'test', mode: 'benchmark' }, [...groups, 'D', 'D'], [...d, 0.5, 1.5], [...same, true, false], [...predictions, true, false], { stdDdof: 0, thresholdMode: 'kfold' });
    expect(Object.keys(small.accuracy!.accuracies)).to.not.include('D');
    expect(small.accuracy!.warnings.join(' ')).to.match(/group "D": 2 pairs cannot be split into 10 folds/);
    expect(small.accuracy!.ddof).to.equal(0);
  });

  it('subset groups (the LFW rule) get TPR/FPR only, no accuracy-based STD/SER', () => {
    const r = evaluateGroups({ attribute: 'race', mode: 'subset' }, ['x', undefined, 'x', 'y'], [0.1, 0.2, 1.9, 0.3], [true, true, false, true], [true, true, true, false]);
    expect(r.accuracy).to.equal(undefined);
    expect(r.breakdown).to.deep.equal([
      { group: 'x', pairs: 2, genuine: 1, impostor: 1, truePositives: 1, falsePositives: 1, tpr: 1, fpr: 1 },
      { group: 'y', pairs: 1, genuine: 1, impostor: 0, truePositives: 0, falsePositives: 0, tpr: 0, fpr: null },
    ]);
  });

  it('lfw-pairs groups: lfw_race_dict.json labels View 2 pairs as strategy-specs 7.7 counts them', async function () {
    needs(this, `${LFW}/pairs.txt`, `${LFW}/annotations/lfw_race_dict.json`);
    const o = lfwPairs.options.parse({ root: `${LFW}/images`, pairsFile: `${LFW}/pairs.txt`, groups: `${LFW}/annotations/lfw_race_dict.json` });
    const src = await lfwPairs.create(o, testContext(tmpDir('lfw-groups')));
    const init = await src.init();
    expect(init.groups).to.deep.include({ mode: 'subset' });
    const count = (g: string, same?: boolean) => init.pairs.filter((p) => p.group === g && (same === undefined || p.same === same)).length;
    expect([count('caucasian'), count('caucasian', true), count('caucasian', false)]).to.deep.equal([824, 772, 52]);
    expect(['african', 'latino', 'eastasian', 'asianindian', 'pacificislander'].map((g) => count(g))).to.deep.equal([51, 25, 18, 5, 1]);
    expect(init.pairs.filter((p) => p.group !== undefined)).to.have.length(824 + 51 + 25 + 18 + 5 + 1);
    // Group labels stay out of the list hash: the teacher's embedding cache is shared with ungrouped runs.
    const plain = await (await lfwPairs.create(lfwPairs.options.parse({ root: `${LFW}/images`, pairsFile: `${LFW}/pairs.txt` }), testContext(tmpDir('lfw-groups')))).init();
    expect(plain.listHash).to.equal(init.listHash);
  });

  it('group-pairs: identity-free UTKFace pairs by race, balanced and deterministic', async function () {
    needs(this, `${UTK}/labels.csv`, `${UTK}/images`);
    const race = new Map(readFileSync(`${UTK}/labels.csv`, 'utf8').trim().split('\n').slice(1).map((l) => { const c = l.split(','); return [c[0]!, c[3]!] as const; }));
    const o = groupPairs.options.parse({ root: `${UTK}/images`, labels: `${UTK}/labels.csv`, pairsPerGroup: 12, size: 48 });
    const src = await groupPairs.create(o, testContext(tmpDir('utk')));
    const init = await src.init();
    expect(init.groups).to.deep.equal({ attribute: 'race (labels.csv)', mode: 'benchmark' });
    expect(init.pairs).to.have.length(5 * 24);
    const file = (k: string) => /^group-pairs:(.+)#\d+$/.exec(k)![1]!;
    for (const g of ['Asian', 'Black', 'Indian', 'Others', 'White']) {
      const ps = init.pairs.filter((p) => p.group === g);
      expect([ps.filter((p) => p.same).length, ps.filter((p) => !p.same).length]).to.deep.equal([12, 12]);
      for (const p of ps) {
        expect(race.get(file(p.a)), p.a).to.equal(g);
        expect(race.get(file(p.b)), p.b).to.equal(g);
        expect(file(p.a) === file(p.b), `${p.a} ${p.b}`).to.equal(p.same); // genuine = one image, impostor = two
      }
    }
    // Every source image is used once: impostors never reuse a genuine pair's image.
    const files = init.pairs.flatMap((p) => (p.same ? [file(p.a)] : [file(p.a), file(p.b)]));
    expect(new Set(files).size).to.equal(files.length);
    const again = await (await groupPairs.create(o, testContext(tmpDir('utk')))).init();
    expect(again.pairs).to.deep.equal(init.pairs);
    // A genuine pair's two views differ (no flip: the flip test would cancel it), and stay in 0..255.
    const g = init.pairs.find((p) => p.same)!;
    const x = await src.load([g.a, g.b, g.a]);
    try {
      expect(x.shape).to.deep.equal([3, 48, 48, 3]);
      const [a, b, a2] = tf.unstack(x) as tf.Tensor3D[];
      expect(tf.max(tf.abs(tf.sub(a!, b!))).dataSync()[0]).to.be.greaterThan(5);
      expect(tf.max(tf.abs(tf.sub(a!, a2!))).dataSync()[0]).to.equal(0);
      expect(tf.min(x).dataSync()[0]).to.be.at.least(0);
      expect(tf.max(x).dataSync()[0]).to.be.at.most(255);
      tf.dispose([a!, b!, a2!]);
    } finally {
      x.dispose();
    }
  });

  it('group-pairs: a group with too few images is a clear error', async function () {
    needs(this, `${UTK}/labels.csv`);
    const src = await groupPairs.create(groupPairs.options.parse({ root: `${UTK}/images`, labels: `${UTK}/labels.csv`, pairsPerGroup: 600 }), testContext(tmpDir('utk')));
    const err = await src.init().then(() => null, (e: Error) => e);
    expect(err?.message).to.match(/group "Asian" has 1600 images; 1800 are needed for 600 genuine \+ 600 impostor pairs/);
  });
});
