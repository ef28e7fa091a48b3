import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import {
  batchThresholds, EKD_ANCHOR_DIVISORS, EKD_DEFAULTS, EkdAnchors, ekdLoss, softRank, type EkdLossResult, type EkdOptions,
} from '../../strategies/ekd/loss.js';
import { checksum, expectNoLeak, grid, relErr, t2 } from '../helpers/loss-inputs.js';

// Printed by test/fixtures/loss-refs/ekd.py (numpy, float64 from the float32 inputs). orderGap / anchorGap: the
// smallest similarity gaps that decide the sort order and the hard counts, far above float32 noise. grad = central
// differences w.r.t. the student with anchors and pair selection fixed (they carry no gradient).
const REF = {
  checksum: {
    fs: 10.53599922,
    ft: 2.778999818,
    fs2: -6.41300022,
    ft2: -12.35600051,
  },
  zerosStep1: {
    loss: 0.4614507367,
    pos: 17.43813732,
    neg: 11.26879902,
    positives: 8,
    negatives: 58,
    idx: [5, 0, 0, 0, 0, 0],
    orderGap: 0.00401426216,
    selectedPositives: 8,
    selectedNegatives: 58,
    anchorsS: [0.004075850777, 0.005554639769, 0.005554639769, 0.005554639769, 0.005554639769, 0.005554639769],
    anchorsT: [0.002450685866, 0.007309195455, 0.007309195455, 0.007309195455, 0.007309195455, 0.007309195455],
  },
  zerosStep2: {
    loss: 0.20713343,
    pos: 4.845402999,
    neg: 11.022537,
    positives: 8,
    negatives: 58,
    idx: [5, 0, 0, 0, 0, 0],
    orderGap: 0.07195719436,
    selectedPositives: 8,
    selectedNegatives: 58,
    anchorsS: [0.007332912702, 0.0132275665, 0.0132275665, 0.0132275665, 0.0132275665, 0.0132275665],
    anchorsT: [0.005096846536, 0.0136349045, 0.0136349045, 0.0136349045, 0.0136349045, 0.0136349045],
  },
  noNegatives: {
    loss: 0.2404250467,
    pos: 12.02125234,
    neg: 0.0,
    positives: 66,
    negatives: 0,
    idx: [],
    selectedPositives: 66,
    selectedNegatives: 0,
    anchorsS: [0.007332912702, 0.0132275665, 0.0132275665, 0.0132275665, 0.0132275665, 0.0132275665],
    anchorsT: [0.005096846536, 0.0136349045, 0.0136349045, 0.0136349045, 0.0136349045, 0.0136349045],
  },
  firstBatch: {
    loss: 0.005127238217,
    pos: 0.1246848318,
    neg: 0.263354158,
    positives: 8,
    negatives: 58,
    idx: [5, 0, 0, 0, 0, 0],
    orderGap: 0.00401426216,
    selectedPositives: 8,
    selectedNegatives: 58,
    anchorsS: [0.4075850777, 0.5554639769, 0.5554639769, 0.5554639769, 0.5554639769, 0.5554639769],
    anchorsT: [0.2450685866, 0.7309195455, 0.7309195455, 0.7309195455, 0.7309195455, 0.7309195455],
    grad: [
      0.0001097092985, -0.0002067926013, 0.0006102078994, -0.001166704853, -0.001627883166, 0.0003051475843,
      -0.0001952409562, -0.0002028834895, -6.611348578e-05, 8.71403609e-05, 6.060724839e-07, -4.805070968e-05,
      -0.0001427930421, -7.083036501e-05, -8.83120777e-05, -5.446241678e-05, 7.65897519e-05, 2.908992925e-06,
      -4.505866036e-05, -1.518563573e-05, 6.35858987e-06, 1.380661904e-05, -7.177764806e-05, 3.543926394e-05,
      0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
      0.0, 0.0, -0.05008818454, -0.008242179576, 0.02549377868, 0.0185335684,
      0.01916697112, -0.0063484671, 0.03731977021, -0.02509585304, -6.625725359e-05, -5.077314784e-05,
      8.728650788e-05, -7.11560858e-05, 0.0001427927733, -4.844296448e-05, 9.513080428e-07, 8.976560771e-05,
      0.001170959903, 0.0006772126779, 0.001310831871, 0.0003310502619, -0.0003768269685, 0.0006238107799,
      -0.0002613853869, -0.0001855052847, 0.0, 0.0, 0.0, 0.0,
      0.0, 0.0, 0.0, 0.0, -2.125036258e-11, 1.301042607e-11,
      3.035766083e-12, -2.125036258e-11, -1.82145965e-11, -1.691355389e-11, -3.035766083e-11, 1.301042607e-12,
      -0.0005759841883, 0.0007044351096, -0.0003861839347, -0.0008424988263, -0.0004782696903, -0.0006972927531,
      0.0007391449618, 0.0007178047067, 0.0, 0.0, 0.0, 0.0,
      0.0, 0.0, 0.0, 0.0, 0.02292184066, 0.0007113307452,
      0.01355344827, -0.04108375191, -0.03018413864, 0.002778880534, -0.01103093709, -0.00285158114,
    ],
  },
  firstBatchTop10: {
    loss: 0.0141860313,
    pos: 0.1246848318,
    neg: 1.169233467,
    positives: 8,
    negatives: 58,
    idx: [5, 0, 0, 0, 0, 0],
    orderGap: 0.002985507379,
    selectedPositives: 8,
    selectedNegatives: 10,
    anchorsS: [0.4075850777, 0.5554639769, 0.5554639769, 0.5554639769, 0.5554639769, 0.5554639769],
    anchorsT: [0.2450685866, 0.7309195455, 0.7309195455, 0.7309195455, 0.7309195455, 0.7309195455],
    grad: [
      0.0006363139304, -0.001199397088, 0.003539205816, -0.006766888152, -0.009441722361, 0.001769855987,
      -0.001132397546, -0.001176724239, -0.000383458371, 0.0005054138835, 3.514960892e-06, -0.0002786940843,
      -0.0008281994856, -0.0004108161762, -0.0005122099932, -0.000315882152, 0.0004442205588, 1.687215905e-05,
      -0.0002613402316, -8.80766857e-05, 3.687982385e-05, 8.00783901e-05, -0.0004163103577, 0.0002055477307,
      0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
      0.0, 0.0, -0.2905114703, -0.04780464154, 0.1478639164, 0.1074946967,
      0.1111684325, -0.03682110918, 0.2164546672, -0.1455559476, -0.0003842920678, -0.0002944843041,
      0.0005062616671, -0.000412705369, 0.0008281981403, -0.0002809691204, 5.517425926e-06, 0.0005206406304,
      0.006791567439, 0.003927833529, 0.007602824855, 0.001920091519, -0.002185596418, 0.003618102522,
      -0.001516035245, -0.001075930654, 0.0, 0.0, 0.0, 0.0,
      0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
      0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
      -0.003340708439, 0.004085723667, -0.002239866541, -0.004886493401, -0.00277396406, -0.00404429811,
      0.004287040691, 0.0041632675, 0.0, 0.0, 0.0, 0.0,
      0.0, 0.0, 0.0, 0.0, 0.1329466758, 0.004125718323,
      0.07860999998, -0.2382857611, -0.1750680041, 0.0161175071, -0.06397943512, -0.01653917061,
    ],
  },
  strictCritical: {
    loss: 0.04431231697,
    pos: 0.9974786545,
    neg: 2.436274388,
    positives: 8,
    negatives: 58,
    idx: [5, 0, 0, 0, 0, 0],
    orderGap: 0.00401426216,
    anchorGap: 0.00401426216,
    selectedPositives: 1,
    selectedNegatives: 6,
    anchorsS: [0.4075850777, 0.5554639769, 0.5554639769, 0.5554639769, 0.5554639769, 0.5554639769],
    anchorsT: [0.2450685866, 0.7309195455, 0.7309195455, 0.7309195455, 0.7309195455, 0.7309195455],
    grad: [
      0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
      0.0, 0.0, -0.000639097289, 0.0008423564693, 5.858272201e-06, -0.0004644901443,
      -0.00138033248, -0.0006846936247, -0.0008536833219, -0.0005264702493, 8.348415709e-06, 3.955546307e-05,
      8.925916256e-05, -0.0001459246231, -0.0001977287431, -2.217212525e-05, 7.679807484e-05, -2.070592309e-05,
      0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
      0.0, 0.0, -0.4815981359, -0.09088467243, 0.2402673791, 0.1848211471,
      0.1697775935, -0.04994474821, 0.3464150248, -0.2422370846, -0.0006404867817, -0.0004908071727,
      0.0008437694432, -0.0006878422797, 0.001380330232, -0.0004682818681, 9.195710166e-06, 0.0008677343843,
      0.01154786816, 0.005878886815, 0.01006738958, 0.005106010961, -0.006912799909, 0.007750331231,
      -0.004869658614, 0.0001962577739, 0.0, 0.0, 0.0, 0.0,
      0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
      0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
      -0.005567844182, 0.006809545629, -0.003733120254, -0.008144137007, -0.00462326534, -0.006740495065,
      0.007145064884, 0.00693878829, 0.0, 0.0, 0.0, 0.0,
      0.0, 0.0, 0.0, 0.0, 0.2219544054, 0.006256333424,
      0.131436558, -0.3978149536, -0.2911368614, 0.02719870964, -0.1075013709, -0.02806360816,
    ],
  },
  noPositives: {
    loss: 0.002498647933,
    pos: 0.0,
    neg: 0.2498647933,
    positives: 0,
    negatives: 66,
    idx: [6, 0, 0, 0, 0, 0],
    orderGap: 0.00178936946,
    selectedPositives: 0,
    selectedNegatives: 66,
    anchorsS: [0.3685880168, 0.5554639769, 0.5554639769, 0.5554639769, 0.5554639769, 0.5554639769],
    anchorsT: [0.2450685866, 0.7309195455, 0.7309195455, 0.7309195455, 0.7309195455, 0.7309195455],
  },
};

const LABELS = [0, 0, 0, 1, 1, 1, 2, 2, 3, 3, 4, 5];

function call(s: number[][], t: number[][], labels: number[], anchors: EkdAnchors, o: Partial<EkdOptions> = {}) {
  const inputs = [t2(s), t2(t)] as const;
  const r = ekdLoss(inputs[0], inputs[1], labels, anchors, o);
  const out = { ...r, loss: r.loss.dataSync()[0]!, pos: r.pos.dataSync()[0]!, neg: r.neg.dataSync()[0]! };
  tf.dispose([r.loss, r.pos, r.neg, ...inputs]);
  return out;
}

interface Want {
  readonly loss: number; readonly pos: number; readonly neg: number;
  readonly positives: number; readonly negatives: number; readonly selectedPositives: number; readonly selectedNegatives: number;
  readonly idx: readonly number[]; readonly anchorsS: readonly number[]; readonly anchorsT: readonly number[];
}

function expectLike(got: ReturnType<typeof call>, anchors: EkdAnchors, want: Want): void {
  expect(got.loss, 'loss').to.be.closeTo(want.loss, 1e-4 * Math.max(want.loss, 1e-3));
  expect(got.pos, 'pos').to.be.closeTo(want.pos, 1e-4 * Math.max(want.pos, 1e-3));
  expect(got.neg, 'neg').to.be.closeTo(want.neg, 1e-4 * Math.max(want.neg, 1e-3));
  expect(got.positives).to.equal(want.positives);
  expect(got.negatives).to.equal(want.negatives);
  expect(got.selectedPositives).to.equal(want.selectedPositives);
  expect(got.selectedNegatives).to.equal(want.selectedNegatives);
  expect(got.thresholdIndices).to.deep.equal(want.idx);
  expect(relErr(anchors.student, want.anchorsS)).to.be.lessThan(1e-6);
  expect(relErr(anchors.teacher, want.anchorsT)).to.be.lessThan(1e-6);
}

/** Gradient w.r.t. the student; fresh 'firstBatch' anchors take this batch's τ inside the tape, as the script holds them. */
function gradAt(s: number[][], t: number[][], labels: number[], o: Partial<EkdOptions> = {}): Float32Array {
  return tf.tidy(() => tf.grad((x: tf.Tensor) =>
    ekdLoss(x as tf.Tensor2D, t2(t), labels, new EkdAnchors('firstBatch'), o).loss)(t2(s)).dataSync() as Float32Array);
}

describe('ekd loss (evaluation-oriented KD)', () => {
  const fs = grid(12, 8, 17), ft = grid(12, 8, 18), fs2 = grid(12, 8, 19), ft2 = grid(12, 8, 20);

  it('uses the same inputs as the python script; reference constants of ekd.py', () => {
    expect(checksum(fs)).to.be.closeTo(REF.checksum.fs, 1e-4);
    expect(checksum(ft)).to.be.closeTo(REF.checksum.ft, 1e-4);
    expect(checksum(fs2)).to.be.closeTo(REF.checksum.fs2, 1e-4);
    expect(checksum(ft2)).to.be.closeTo(REF.checksum.ft2, 1e-4);
    expect(EKD_ANCHOR_DIVISORS).to.deep.equal([10, 100, 1000, 10000, 100000, 1000000]);
    expect(EKD_DEFAULTS).to.deep.equal({ pairSelection: 'code', topK: 2000, temperature: 0.01, posWeight: 0.02, negWeight: 0.01 });
    const gaps = [REF.zerosStep1, REF.zerosStep2, REF.firstBatchTop10, REF.noPositives].map((r) => r.orderGap);
    expect(Math.min(...gaps, REF.strictCritical.anchorGap)).to.be.greaterThan(1e-3);
  });

  it('batch thresholds: idx_k = ⌊L/A_k⌋ into each side sorted on its own (hand-worked)', () => {
    // L = 25 → idx = (2, 0, 0, 0, 0, 0). Student sorted: .9, .8, .7, … → τ^s = (.7, .9, .9, …).
    const ns = Array.from({ length: 25 }, (_, q) => (q === 3 ? 0.9 : q === 7 ? 0.8 : q === 1 ? 0.7 : -0.01 * q));
    const nt = Array.from({ length: 25 }, (_, q) => 0.5 - 0.02 * q); // τ^t = (.46, .5, .5, …)
    const th = batchThresholds(ns, nt);
    expect(th.indices).to.deep.equal([2, 0, 0, 0, 0, 0]);
    expect(relErr(th.student, [0.7, 0.9, 0.9, 0.9, 0.9, 0.9])).to.be.lessThan(1e-7);
    expect(relErr(th.teacher, [0.46, 0.5, 0.5, 0.5, 0.5, 0.5])).to.be.lessThan(1e-7);
    expect(Array.from(th.studentOrder.subarray(0, 4))).to.deep.equal([3, 7, 1, 0]);
    expect(() => batchThresholds([], [])).to.throw(/non-empty/);
  });

  it('soft rank: x = a counts ½ per anchor, the clamp saturates at 6 (hand-worked)', () => {
    const r = tf.tidy(() => softRank(tf.tensor1d([0, 1, 0.01, -1]), [0, 0, 0, 0, 0, 0]).dataSync());
    expect(r[0]).to.be.closeTo(3, 1e-6);
    expect(r[1]).to.be.closeTo(6, 1e-6);
    expect(r[2]).to.be.closeTo(6 / (1 + Math.exp(-1)), 1e-5);
    expect(r[3]).to.be.closeTo(6 / (1 + Math.exp(50)), 1e-12);
  });

  it('hand-worked batch of 3 (firstBatch anchors): 0.02·36 + 0.01·4.5 = 0.765', () => {
    // Student: f0 = f1 = (1, 0), f2 = (0, 1): positive sim 1, negatives 0, 0 → a^s = 0.
    // Teacher: (1, 0), (.6, .8), (0, 1): positive .6, negatives 0, .8 → a^t = .8 (L = 2, all idx 0).
    // Positive: r^s(1) = 6 (clamped), r^t(.6) ≈ 0 → 36. Negatives: r^s = 3, 3; r^t(0) ≈ 0, r^t(.8) = 3 → (9 + 0)/2.
    const a = new EkdAnchors('firstBatch');
    const r = call([[1, 0], [1, 0], [0, 1]], [[1, 0], [0.6, 0.8], [0, 1]], [0, 0, 1], a);
    expect(r.pos).to.be.closeTo(36, 1e-4);
    expect(r.neg).to.be.closeTo(4.5, 1e-4);
    expect(r.loss).to.be.closeTo(0.765, 1e-5);
    expect(Array.from(a.student)).to.deep.equal([0, 0, 0, 0, 0, 0]);
    expect(a.teacher[0]).to.be.closeTo(0.8, 1e-6);
  });

  it('zero-initialised EMA anchors over two batches match numpy', () => {
    const a = new EkdAnchors();
    expectLike(call(fs, ft, LABELS, a), a, REF.zerosStep1);
    expectLike(call(fs2, ft2, LABELS, a), a, REF.zerosStep2);
    expect(a.updates).to.equal(2);
  });

  it('zero negative pairs: the anchor update is skipped and L_neg = 0', () => {
    const a = new EkdAnchors();
    call(fs, ft, LABELS, a);
    call(fs2, ft2, LABELS, a);
    const r = call(fs, ft, Array(12).fill(7), a);
    expect(r.anchorsUpdated).to.equal(false);
    expect(a.updates).to.equal(2);
    expect(r.neg).to.equal(0);
    expectLike(r, a, REF.noNegatives);
  });

  it('zero positive pairs: L_pos = 0, emptyPositives is reported, nothing is NaN', () => {
    const a = new EkdAnchors('firstBatch');
    const labels = Array.from({ length: 12 }, (_, i) => i);
    const r = call(fs, ft, labels, a);
    expect(r.emptyPositives).to.equal(true);
    expect(r.pos).to.equal(0);
    expectLike(r, a, REF.noPositives);
    expect(gradAt(fs, ft, labels).every(Number.isFinite)).to.equal(true);
  });

  it("anchorInit 'firstBatch' takes τ on the first batch, then continues the EMA", () => {
    const a = new EkdAnchors('firstBatch');
    const r = call(fs, ft, LABELS, a);
    expectLike(r, a, REF.firstBatch);
    expect(r.emptyPositives).to.equal(false);
    const before = Array.from(a.student);
    call(fs2, ft2, LABELS, a);
    // second step: 0.99·τ₁ + 0.01·τ₂, where 0.01·τ₂ is what the zero-initialised EMA adds on its first step
    const zero = new EkdAnchors();
    call(fs2, ft2, LABELS, zero);
    before.forEach((v, k) => expect(a.student[k]).to.be.closeTo(0.99 * v + zero.student[k]!, 1e-6));
  });

  it('gradient w.r.t. the student matches finite differences (all negatives; top-10; strictCritical)', () => {
    const cases: [Partial<EkdOptions>, readonly number[]][] = [
      [{}, REF.firstBatch.grad],
      [{ topK: 10 }, REF.firstBatchTop10.grad],
      [{ pairSelection: 'strictCritical' }, REF.strictCritical.grad],
    ];
    for (const [o, want] of cases) {
      const g = gradAt(fs, ft, LABELS, o);
      expect(Math.max(...g.map(Math.abs)), 'non-trivial gradient').to.be.greaterThan(1e-3);
      expect(relErr(g, want), JSON.stringify(o)).to.be.lessThan(1e-4);
    }
  });

  it('topK keeps the hardest student negatives; strictCritical keeps only pairs whose hard counts differ', () => {
    const a1 = new EkdAnchors('firstBatch');
    expectLike(call(fs, ft, LABELS, a1, { topK: 10 }), a1, REF.firstBatchTop10);
    const a2 = new EkdAnchors('firstBatch');
    expectLike(call(fs, ft, LABELS, a2, { pairSelection: 'strictCritical' }), a2, REF.strictCritical);
  });

  it('anchor state survives JSON and restore; restore rejects a wrong length', () => {
    const a = new EkdAnchors();
    call(fs, ft, LABELS, a);
    const b = new EkdAnchors();
    b.restore(JSON.parse(JSON.stringify(a.state())));
    expect(Array.from(b.student)).to.deep.equal(Array.from(a.student));
    expect(Array.from(b.teacher)).to.deep.equal(Array.from(a.teacher));
    expect(b.updates).to.equal(1);
    const rA = call(fs2, ft2, LABELS, a), rB = call(fs2, ft2, LABELS, b);
    expect(rB.loss).to.equal(rA.loss);
    expect(() => b.restore({ student: [0], teacher: [0], updates: 1 })).to.throw(/anchors/);
  });

  it('allocates nothing beyond the three returned scalars', () => {
    const s = t2(fs), t = t2(ft);
    const scalars = (labels: number[], o: Partial<EkdOptions>) => () => {
      const r: EkdLossResult = ekdLoss(s, t, labels, new EkdAnchors(), o);
      return [r.loss, r.pos, r.neg];
    };
    expectNoLeak(scalars(LABELS, {}), 3);
    expectNoLeak(scalars(LABELS, { pairSelection: 'strictCritical', topK: 5 }), 3);
    expectNoLeak(scalars(Array(12).fill(0), {}), 3);
    tf.dispose([s, t]);
  });
});
