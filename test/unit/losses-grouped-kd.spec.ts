import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { logitKdLoss } from '../../strategies/logit-kd/loss.js';
import {
  cumulativeGroupSize, GKD_DEFAULTS, gkdLoss, gkdRamp, primaryGroupMask, type GkdLossOptions,
} from '../../strategies/grouped-kd/loss.js';
import { checksum, expectNoLeak, grid, relErr, t2 } from '../helpers/loss-inputs.js';

// Printed by test/fixtures/loss-refs/grouped-kd.py (numpy, float64 from the float32 inputs; within-group
// distributions renormalised exactly, independent of the −1e4 mask used by the implementation). *Gap: the
// smallest logit gap at the group boundary, far above float32 noise. grad = central differences, mask fixed.
const REF = {
  checksum: {
    zs: -850.4800113,
    zt: -1014.30999,
  },
  k5: {
    bkd: 0.5091690165,
    pkd: 2.715423273,
    skd: 9.631852317,
    kd: 22.2325552,
  },
  k5Gap: 0.1700000763,
  k5Members: [
    [2, 3, 14, 23, 38],
    [1, 16, 17, 22, 37],
    [0, 4, 15, 24, 33],
    [21, 23, 27, 28, 39],
    [1, 5, 6, 22, 29],
    [7, 8, 13, 22, 33],
  ],
  k5Lambda1: {
    bkd: 0.5091690165,
    pkd: 2.715423273,
    skd: 9.631852317,
    kd: 31.86440751,
  },
  k5Teacher: {
    bkd: 0.6764378623,
    pkd: 1.754186467,
    skd: 11.90798905,
    kd: 14.7099296,
  },
  k5TeacherGap: 0.02999973297,
  cumulativeK: {
    "tau0.9step3": 22,
    "tau0.93step100": 40,
    "tau0.5step1": 7,
    tau1step3: 40,
    "tau0.9step3T4": 31,
  },
  cumulative: {
    bkd: 0.4937317359,
    pkd: 7.403989237,
    skd: 7.489446959,
    kd: 30.10968868,
  },
  cumulativeGap: 0.1699998379,
  kAtLeastC: {
    bkd: 0.0,
    pkd: 7.907659545,
    skd: 0.0,
    kd: 63.26127636,
  },
  hintonT4: 7.907659545,
  gradKdLambda1: [
    -0.0003943725346, -0.008867575119, -0.7016416177, 0.3648114966, -0.007662467993, 0.06374503236,
    -0.05327818187, -9.546496926e-05, 0.007885239128, 0.03665831372, 0.03721233277, 0.00830065261,
    -1.667288529e-05, -0.05004411463, 0.8306813744, -0.006357423032, 0.03749247135, -0.062007528,
    -0.006632962624, -7.732126051e-05, 0.0006260609808, -0.0001321769361, -0.007452401363, -0.7457908655,
    0.03077307831, -0.008532230922, 0.05524320734, -0.06061544333, -0.000479065676, 0.005017131599,
    0.02225255002, 0.02077042716, 0.004043338109, -0.000955278523, -0.06947596987, 0.03186920594,
    -0.01863819499, 0.01248605663, 0.2637745311, -0.02449517034, -0.03810740523, 0.8531867621,
    0.005713774343, -0.03105974145, 0.01507932623, -0.03264382897, -0.002230995833, 0.002020051681,
    0.009810614543, 0.01055621013, 0.002502206442, -0.001333010147, -0.05036867456, 0.02927402143,
    -0.01561385687, 0.01523568649, -0.1392214592, -0.1764922644, -0.0007310152483, 0.0001564206542,
    -0.0006431477573, -0.0120629835, -0.3030441285, 0.01965177532, -0.01143954798, 0.04158793843,
    -0.0522668504, -0.0005187743568, 0.004335580783, 0.02000461308, 0.01980556519, 0.004188301261,
    -0.0005932534464, -0.05253993685, 0.03792405678, -0.01297694574, 0.01698036556, -0.1585917513,
    -0.01456579035, -0.0009679084201, 0.7864743079, 0.003222730527, -0.05020808302, 0.009825415148,
    -1.123990877, -0.003679488714, 0.00140370382, 0.008080242253, 0.009263342093, 0.002166581581,
    -0.001667284977, -0.07674046465, 0.0322404059, -0.01448871956, 0.01919046966, -1.040602507,
    -0.01047876452, -0.0004900755357, 0.0003406270821, -0.000297974978, -0.007147001213, -0.07269710345,
    0.03789988057, -0.005579460449, 0.6497871361, -0.04348049387, 0.0001827498153, 0.01172641895,
    0.05162519301, 0.05353260235, 0.01353911117, 0.0004002842502, -0.0337991839, 0.8107940062,
    -0.003098470813, 0.06227335803, -0.07470445951, -0.002908770114, 0.0005539178005, 0.001536713867,
    0.004432989087, -0.02127440268, 0.01500398206, -0.08040425925, -0.001105167513, 0.002564016555,
    0.01561630647, 0.0185142035, 0.004890257088, -0.0002959605894, -0.03404116633, 0.0461351064,
    -0.00251429455, 0.03899961243, -0.06287246634, -0.001534045779, 0.0005657412316, 0.00200637551,
    0.0009073009011, -0.0008154437126, -0.03271786575, 0.430874346, -0.0004874856074, -0.3327604361,
    -0.004420231292, 0.002833891344, 0.04402820863, -0.03542343663, -0.1373900638, 0.04790136288,
    0.005126704394, -0.002075895011, -0.06140689202, 0.0003167262008, -0.02122919796, -0.007047940898,
    0.0005222560162, 0.009346427632, 0.02021123535, 0.1290196145, -0.0007365379417, 0.4237655435,
    -0.004670994258, 0.0008721166012, 0.02153918111, 0.275793214, 0.09016183533, 0.03031925111,
    0.003476269939, -0.0007365379417, -0.03371478385, 0.0005822258231, -0.02521593778, -0.001418145601,
    0.001276053041, 0.01541211603, 0.02779354169, 0.02068004967, 0.003154186246, -0.0003477609312,
    -0.03899095802, 0.005759222432, -0.7768155292, 0.0007011493608, 0.03214953637, -0.04292238742,
    -0.02187925219, -0.01931798188, -0.04044495228, 0.04866606673, 0.002573822044, -0.005419870774,
    0.0246258729, -0.008715824507, 0.0008834675214, 0.02937612997, -0.01191572707, -0.03786185232,
    -0.0205863504, 0.03215054001, -0.02556086542, 0.0006288285448, 0.04773091788, -0.0242421514,
    -0.01945358541, -0.01566441732, -0.02904447172, -0.1433300501, 0.08197643275, -0.002369956675,
    0.04971538381, -0.002919497533, 0.003974957252, 0.3260197534, -0.02692657119, -0.02692095435,
    -0.02986556957, 0.02073493555, 0.01862792409, -0.0001364046653, -0.008988857658, 0.0003706777107,
    0.3130044863, -0.01250179693, -0.0002956159761, 0.000456768845, 0.0005885585352, 4.090949801e-06,
    -0.004321400127, -9.359624187e-06, 0.003140979032, -0.01889426393, 0.002159607604, -0.444815905,
    -0.01217154555, -0.0009012133262, -0.000209002593, -0.0005659650526, -0.006236602346, -0.01278826467,
  ],
};

const terms = (s: number[][], t: number[][], labels: number[], o: Partial<GkdLossOptions>) => tf.tidy(() => {
  const r = gkdLoss(t2(s), t2(t), Int32Array.from(labels), o);
  return { bkd: r.bkd.dataSync()[0]!, pkd: r.pkd.dataSync()[0]!, skd: r.skd.dataSync()[0]!, kd: r.kd.dataSync()[0]!, k: r.groupSize };
});

function expectTerms(got: ReturnType<typeof terms>, want: { bkd: number; pkd: number; skd: number; kd: number }): void {
  for (const key of ['bkd', 'pkd', 'skd', 'kd'] as const) {
    expect(got[key], key).to.be.closeTo(want[key], 1e-5 * Math.max(want[key], 1e-3));
  }
}

describe('grouped-kd loss (GKD: binary, primary and secondary group KD)', () => {
  const zs = grid(6, 40, 15, 10), zt = grid(6, 40, 16, 10);
  const labels = [3, 17, 0, 39, 22, 8];

  it('uses the same inputs as the python script; defaults of distillation/gkd.py', () => {
    expect(checksum(zs)).to.be.closeTo(REF.checksum.zs, 1e-3);
    expect(checksum(zt)).to.be.closeTo(REF.checksum.zt, 1e-3);
    expect(GKD_DEFAULTS).to.include({ groupMode: 'fixed', groupSize: 10_000, tau: 0.93, step: 100, temperature: 4, alpha: 1, beta: 8, lambda: 0 });
    expect(Math.min(REF.k5Gap, REF.k5TeacherGap, REF.cumulativeGap)).to.be.greaterThan(1e-3);
  });

  it('hand-worked case (T = 1, C = 3, k = 2): BKD = .6 ln .8 + .4 ln 1.6, PKD = ⅓ ln 2, SKD = 0', () => {
    // z^s = [0, ln 2, 0] → p^s = [¼, ½, ¼]; target 0 is forced in, then class 1: P = {0, 1}, S = {2}.
    // z^t = [ln 2, 0, ln 2] → p^t = [⅖, ⅕, ⅖]; b^t = [⅗, ⅖], b^s = [¾, ¼]. Inside P: p̂^t = [⅔, ⅓], p̂^s = [⅓, ⅔].
    const r = terms([[0, Math.LN2, 0]], [[Math.LN2, 0, Math.LN2]], [0], { groupSize: 2, temperature: 1 });
    expect(r.k).to.equal(2);
    expect(r.bkd).to.be.closeTo(0.6 * Math.log(0.8) + 0.4 * Math.log(1.6), 1e-6);
    expect(r.pkd).to.be.closeTo(Math.LN2 / 3, 1e-6);
    expect(r.skd).to.be.closeTo(0, 1e-7); // a single secondary class: both sides put mass 1 on it
    expect(r.kd).to.be.closeTo(r.bkd + 8 * r.pkd, 1e-6);
  });

  it('primary group = top-k of the ranking logits with the target forced in', () => {
    const members = tf.tidy(() => primaryGroupMask(t2(zs), Int32Array.from(labels), 5).arraySync() as number[][]);
    expect(members.map((row) => row.flatMap((v, c) => (v === 1 ? [c] : [])))).to.deep.equal(REF.k5Members);
    members.forEach((row, i) => expect(row[labels[i]!]).to.equal(1));
  });

  it('fixed k = 5 matches numpy (λ = 0 and λ = 1), ranked by the student or the teacher', () => {
    expectTerms(terms(zs, zt, labels, { groupSize: 5 }), REF.k5);
    expectTerms(terms(zs, zt, labels, { groupSize: 5, lambda: 1 }), REF.k5Lambda1);
    expectTerms(terms(zs, zt, labels, { groupSize: 5, rankBy: 'teacher' }), REF.k5Teacher);
  });

  it('cumulative group size: the first scanned k reaching τ·B, else C', () => {
    const k = (tau: number, step: number, T = 1) => tf.tidy(() => cumulativeGroupSize(t2(zs), tau, step, T));
    expect(k(0.9, 3)).to.equal(REF.cumulativeK['tau0.9step3']);
    expect(k(0.93, 100)).to.equal(REF.cumulativeK['tau0.93step100']);
    expect(k(0.5, 1)).to.equal(REF.cumulativeK['tau0.5step1']);
    expect(k(1, 3)).to.equal(40); // τ ≥ 1 is never reached → k = C (§6.6)
    expect(REF.cumulativeK.tau1step3).to.equal(40);
    expect(k(0.9, 3, 4)).to.equal(REF.cumulativeK['tau0.9step3T4']);
    const r = terms(zs, zt, labels, { groupMode: 'cumulative', tau: 0.9, step: 3, beta: 4 });
    expect(r.k).to.equal(REF.cumulativeK['tau0.9step3']);
    expectTerms(r, REF.cumulative);
  });

  it('k ≥ C: BKD = SKD = 0 and PKD is plain Hinton KD', () => {
    const r = terms(zs, zt, labels, { groupSize: 50, lambda: 1 });
    expect(r.k).to.equal(40);
    expect(r.bkd).to.equal(0);
    expect(r.skd).to.equal(0);
    expectTerms(r, REF.kAtLeastC);
    expect(REF.kAtLeastC.pkd).to.be.closeTo(REF.hintonT4, 1e-9);
    expect(r.pkd).to.be.closeTo(tf.tidy(() => logitKdLoss(t2(zs), t2(zt)).dataSync()[0]!), 1e-5 * r.pkd);
  });

  it('gradient of α·BKD + β·PKD + λ·SKD w.r.t. the student logits matches finite differences', () => {
    const g = tf.tidy(() => tf.grad((x: tf.Tensor) =>
      gkdLoss(x as tf.Tensor2D, t2(zt), Int32Array.from(labels), { groupSize: 5, lambda: 1 }).kd)(t2(zs)).dataSync() as Float32Array);
    expect(relErr(g, REF.gradKdLambda1)).to.be.lessThan(1e-4);
  });

  it('ramp w(e) = min(e/10, 1)', () => {
    expect([0, 1, 5, 10, 25].map((e) => gkdRamp(e))).to.deep.equal([0, 0.1, 0.5, 1, 1]);
  });

  it('allocates nothing beyond the four returned scalars (fixed, cumulative and k ≥ C)', () => {
    const a = t2(zs), b = t2(zt), y = Int32Array.from(labels);
    const scalars = (o: Partial<GkdLossOptions>) => () => { const r = gkdLoss(a, b, y, o); return [r.bkd, r.pkd, r.skd, r.kd]; };
    expectNoLeak(scalars({ groupSize: 5 }), 4);
    expectNoLeak(scalars({ groupMode: 'cumulative', tau: 0.9, step: 3 }), 4);
    expectNoLeak(scalars({ groupSize: 50 }), 4);
    tf.dispose([a, b]);
  });
});
