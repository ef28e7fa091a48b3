import { expect } from 'chai';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parsePairsFile } from '../../core/eval/pairs-file.js';
import {
  ACCURACY_THRESHOLDS, VAL_THRESHOLDS, contiguousFolds, foldSizes, groupMetrics, kfoldAccuracy, l2normalize,
  labelledGroupBreakdown, pairDistances, rocAuc, rocCurve, singleBestAccuracy, tarAtFar, valAtFar,
} from '../../core/eval/verification.js';

// Deterministic data shared with the Python reference below (same LCG, same float64 arithmetic).
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => { s = (Math.imul(1664525, s) + 1013904223) >>> 0; return s / 4294967296; };
}
function gen(seed: number, n: number, quant: boolean): { dist: number[]; same: boolean[] } {
  const r = lcg(seed), dist: number[] = [], same: boolean[] = [];
  for (let i = 0; i < n; i++) {
    const sm = r() < 0.5, u = r();
    let x = sm ? 0.3 + 1.2 * u : 0.9 + 1.2 * u;
    if (quant) x = Math.floor(x * 20) / 20;
    dist.push(x); same.push(sm);
  }
  return { dist, same };
}

/*
Reference numbers: python3 + numpy 2.4.6 (scipy not used), a direct transcription of
deepinsight/insightface recognition/arcface_torch/eval/verification.py (calculate_roc,
calculate_accuracy, calculate_val with the project's two threshold rules of spec 7.5) and of
eval_ijbc.py's nearest-FPR TAR@FAR on an sklearn-style ROC (drop_intermediate=False):

import numpy as np
def lcg(seed):
    s = seed
    while True:
        s = (1664525 * s + 1013904223) % 2**32
        yield s / 4294967296
def gen(seed, n, quant):
    r = lcg(seed); d = []; same = []
    for i in range(n):
        sm = next(r) < 0.5; u = next(r)
        x = 0.3 + 1.2 * u if sm else 0.9 + 1.2 * u
        if quant: x = np.floor(x * 20) / 20   # multiples of 0.05: ties with the 0.01 grid
        d.append(x); same.append(sm)
    return np.array(d), np.array(same)
def kfold(n, k):  # sklearn KFold(shuffle=False)
    sizes = np.full(k, n // k); sizes[: n % k] += 1; cur = 0
    for s in sizes:
        test = np.arange(cur, cur + s); yield np.setdiff1d(np.arange(n), test), test; cur += s
def calculate_accuracy(threshold, dist, actual_issame):  # verification.py
    predict_issame = np.less(dist, threshold)
    tp = np.sum(np.logical_and(predict_issame, actual_issame))
    tn = np.sum(np.logical_and(np.logical_not(predict_issame), np.logical_not(actual_issame)))
    return float(tp + tn) / dist.size
def calculate_roc(dist, issame, k=10):  # verification.py calculate_roc, pca = 0
    thresholds = np.arange(0, 4, 0.01); acc = []; best = []; pred = np.zeros(len(dist), bool)
    for train, test in kfold(len(dist), k):
        acc_train = np.array([calculate_accuracy(t, dist[train], issame[train]) for t in thresholds])
        b = thresholds[np.argmax(acc_train)]
        acc.append(calculate_accuracy(b, dist[test], issame[test])); best.append(b); pred[test] = dist[test] < b
    return np.array(acc), best, pred
def calculate_val(dist, issame, far_target, rule, k=10):  # verification.py calculate_val + project rules (7.5)
    thresholds = np.arange(0, 4, 0.001); val = []; far = []; th = []
    for train, test in kfold(len(dist), k):
        d, s = dist[train], issame[train]
        far_train = np.array([np.sum((d < t) & ~s) / np.sum(~s) for t in thresholds])
        if np.max(far_train) >= far_target:
            if rule == 'max': t = thresholds[np.nonzero(far_train <= far_target)[0][-1]]
            else:
                first = np.r_[True, far_train[1:] != far_train[:-1]]; fx, tx = far_train[first], thresholds[first]
                i = np.searchsorted(fx, far_target, side='right') - 1
                t = tx[i] if fx[i] == far_target else tx[i] + (far_target - fx[i]) * (tx[i+1] - tx[i]) / (fx[i+1] - fx[i])
        else: t = 0.0
        d, s = dist[test], issame[test]; th.append(t)
        val.append(np.sum((d < t) & s) / np.sum(s)); far.append(np.sum((d < t) & ~s) / np.sum(~s))
    return np.mean(val), np.std(val), np.mean(far), th
def roc(scores, label):  # sklearn _binary_clf_curve + origin, drop_intermediate=False
    o = np.argsort(scores, kind='mergesort')[::-1]; s = scores[o]; y = label[o]
    idx = np.r_[np.where(np.diff(s))[0], y.size - 1]
    tps = np.cumsum(y)[idx]; fps = 1 + idx - tps
    tps = np.r_[0, tps]; fps = np.r_[0, fps]
    return fps / fps[-1], tps / tps[-1]
def tar_at_far(scores, label):  # eval_ijbc.py
    fpr, tpr = roc(scores, label); fpr = np.flipud(fpr); tpr = np.flipud(tpr); out = []
    for x in [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1]:
        _, i = min(list(zip(abs(fpr - x), range(len(fpr))))); out.append((tpr[i], fpr[i]))
    return out
def auc_mw(scores, label):  # Mann-Whitney: P(pos > neg) + P(pos = neg)/2, independent of the ROC
    p = scores[label][:, None]; q = scores[~label][None, :]
    return (np.sum(p > q) + 0.5 * np.sum(p == q)) / (p.size * q.size)
for name, (d, s) in {'A600': gen(7, 600, False), 'B605q': gen(11, 605, True)}.items():
    acc, best, pred = calculate_roc(d, s)
    print(name, 'nSame', int(s.sum()), 'acc', repr(np.mean(acc)), 'std', repr(np.std(acc)))
    print(' fold', [repr(a) for a in acc]); print(' theta', [repr(b) for b in best])
    print(' predSame', int(pred.sum()), 'predIdxSum', int(np.nonzero(pred)[0].sum()))
    for far in [1e-3, 1e-2, 0.05]:
        for rule in ['max', 'interp']:
            v, sd, f, th = calculate_val(d, s, far, rule)
            print(' val', far, rule, repr(v), repr(sd), repr(f), [repr(t) for t in th])
    sc = 1 - d / 2
    print(' tar', [(repr(a), repr(b)) for a, b in tar_at_far(sc, s)])
    fpr, tpr = roc(sc, s)
    print(' auc_mw', repr(auc_mw(sc, s)), 'auc_trapz', repr(np.trapezoid(tpr, fpr)), 'rocPoints', fpr.size)

Printed (np.float64(...) wrappers removed) — pasted below as REF.
*/
interface ValRef { readonly far: number; readonly rule: 'maxThresholdAtFar' | 'interp'; readonly val: number; readonly std: number; readonly meanFar: number; readonly th: readonly number[] }
interface Ref {
  readonly seed: number; readonly n: number; readonly quant: boolean; readonly nSame: number;
  readonly acc: number; readonly std: number; readonly fold: readonly number[]; readonly theta: readonly number[];
  readonly predSame: number; readonly predIdxSum: number; readonly vals: readonly ValRef[];
  readonly tar: readonly (readonly [number, number])[]; readonly auc: number; readonly rocPoints: number;
}
const REF: Record<string, Ref> = {
  A600: {
    seed: 7, n: 600, quant: false, nSame: 310, acc: 0.7216666666666667, std: 0.03419714088113868,
    fold: [0.7, 0.7166666666666667, 0.7666666666666667, 0.7666666666666667, 0.7333333333333333, 0.6666666666666666, 0.7333333333333333, 0.6666666666666666, 0.75, 0.7166666666666667],
    theta: [0.9, 1.47, 1.47, 1.47, 1.47, 0.9, 1.47, 0.89, 0.9, 0.9],
    predSame: 291, predIdxSum: 74769,
    vals: [
      { far: 0.001, rule: 'maxThresholdAtFar', val: 0.5044257501851315, std: 0.07585183524359691, meanFar: 0.0035714285714285713, th: [0.9, 0.9, 0.901, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9] },
      { far: 0.001, rule: 'interp', val: 0.0, std: 0.0, meanFar: 0.0, th: [0.237864, 0.23335899999999998, 0.118162, 0.23335899999999998, 0.23335899999999998, 0.23606200000000002, 0.232458, 0.23966600000000002, 0.23606200000000002, 0.23335899999999998] },
      { far: 0.01, rule: 'maxThresholdAtFar', val: 0.5044257501851315, std: 0.07585183524359691, meanFar: 0.013047235023041476, th: [0.901, 0.901, 0.903, 0.901, 0.903, 0.901, 0.917, 0.901, 0.901, 0.901] },
      { far: 0.01, rule: 'interp', val: 0.5044257501851315, std: 0.07585183524359691, meanFar: 0.013047235023041476, th: [0.9018200000000001, 0.901795, 0.90324, 0.901795, 0.90318, 0.90181, 0.9112800000000001, 0.90183, 0.90181, 0.901795] },
      { far: 0.05, rule: 'maxThresholdAtFar', val: 0.5316886812196142, std: 0.08762315801024675, meanFar: 0.05214093701996927, th: [0.9500000000000001, 0.9500000000000001, 0.9560000000000001, 0.9500000000000001, 0.9500000000000001, 0.969, 0.9530000000000001, 0.9560000000000001, 0.9500000000000001, 0.9530000000000001] },
      { far: 0.05, rule: 'interp', val: 0.5316886812196142, std: 0.08762315801024675, meanFar: 0.0485695084485407, th: [0.9470000000000001, 0.9507500000000001, 0.9543, 0.9507500000000001, 0.9507500000000001, 0.9583, 0.9537000000000001, 0.9549000000000001, 0.9465000000000001, 0.9536000000000001] },
    ],
    tar: [[0.5032258064516129, 0.0], [0.5032258064516129, 0.0], [0.5032258064516129, 0.0], [0.5032258064516129, 0.0], [0.5032258064516129, 0.010344827586206896], [0.5806451612903226, 0.1]],
    auc: 0.8538820912124583, rocPoints: 601,
  },
  B605q: {
    seed: 11, n: 605, quant: true, nSame: 295, acc: 0.7553551912568307, std: 0.04821970134786177,
    fold: [0.7049180327868853, 0.8360655737704918, 0.7049180327868853, 0.819672131147541, 0.7213114754098361, 0.7333333333333333, 0.8, 0.7833333333333333, 0.75, 0.7],
    theta: [1.06, 1.06, 1.21, 0.91, 1.06, 1.06, 1.06, 1.06, 1.11, 0.91],
    predSame: 255, predIdxSum: 74708,
    vals: [
      { far: 0.001, rule: 'maxThresholdAtFar', val: 0.49850249015690196, std: 0.07663654322064341, meanFar: 0.0, th: [0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9] },
      { far: 0.001, rule: 'interp', val: 0.0, std: 0.0, meanFar: 0.0, th: [0.042347, 0.02773077777777778, 0.03539642857142857, 0.030746625, 0.027931, 0.027430444444444445, 0.028231333333333334, 0.031760250000000004, 0.028431555555555557, 0.03629742857142857] },
      { far: 0.01, rule: 'maxThresholdAtFar', val: 0.49850249015690196, std: 0.07663654322064341, meanFar: 0.0, th: [0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9] },
      { far: 0.01, rule: 'interp', val: 0.04146270396270396, std: 0.04593101732253397, meanFar: 0.0, th: [0.42347, 0.2773077777777778, 0.35396428571428573, 0.30746625, 0.27931, 0.27430444444444446, 0.28231333333333336, 0.3176025, 0.2843155555555556, 0.36297428571428575] },
      { far: 0.05, rule: 'maxThresholdAtFar', val: 0.5594703335879807, std: 0.07667729337463433, meanFar: 0.029845559845559845, th: [0.9490000000000001, 0.9490000000000001, 0.9490000000000001, 0.9490000000000001, 0.9490000000000001, 0.9490000000000001, 0.9490000000000001, 0.9490000000000001, 0.9490000000000001, 0.9490000000000001] },
      { far: 0.05, rule: 'interp', val: 0.5594703335879807, std: 0.07667729337463433, meanFar: 0.029845559845559845, th: [0.9315307692307693, 0.917975, 0.9285625000000001, 0.9194566666666667, 0.9196576923076923, 0.9187153846153846, 0.9188500000000001, 0.9209266666666667, 0.9206000000000001, 0.9277615384615385] },
    ],
    tar: [[0.5016949152542373, 0.0], [0.5016949152542373, 0.0], [0.5016949152542373, 0.0], [0.5016949152542373, 0.0], [0.5016949152542373, 0.0], [0.6033898305084746, 0.07741935483870968]],
    auc: 0.8877255330781848, rocPoints: 37,
  },
};
const TARGETS = [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1];
const EPS = 1e-12;

function closeAll(actual: readonly number[], expected: readonly number[], eps = EPS): void {
  expect(actual).to.have.length(expected.length);
  actual.forEach((a, i) => expect(a, `index ${i}`).to.be.closeTo(expected[i]!, eps));
}

/*
Hand case H20 (10 folds of 2 pairs; fold f = pair 2f "same" with d = s[f], pair 2f+1 "different" with d = t[f]):
  s = 0.305 0.405 0.505 0.605 0.705 0.805 0.905 1.005 1.305 1.455
  t = 1.555 1.655 1.755 1.855 1.955 2.055 2.155 2.255 1.255 1.405
All 20 pairs, correct decisions per θ region (same: d < θ, different: d ≥ θ):
  (1.005,1.255] 8+10 = 18   (1.255,1.305] 8+9 = 17   (1.305,1.405] 9+9 = 18
  (1.405,1.455] 9+8 = 17    (1.455,1.555] 10+8 = 18  above or below: fewer.
Folds 0–6 remove a same pair ≤ 0.905 and a different pair ≥ 1.555, which every best region counts:
  ties at 16 in the three regions → first maximal = smallest grid θ above 1.005 = 1.01 (1.00 fails, 1.005 < 1.00 is false).
  Held out: s < 1.01 right, t ≥ 1.01 right → accuracy 1.
Fold 7 removes s = 1.005, t = 2.255: regions (0.905,1.255] 7+9, (1.305,1.405] 8+8, (1.455,1.555] 9+7 all 16
  → θ* = 0.91; held out 1.005 < 0.91 wrong, 2.255 right → 0.5.
Fold 8 removes s = 1.305, t = 1.255: (1.005,1.405] 8+9 = 17 = (1.455,1.555] 9+8 → θ* = 1.01;
  held out 1.305 < 1.01 wrong, 1.255 ≥ 1.01 right → 0.5.
Fold 9 removes s = 1.455, t = 1.405: (1.005,1.255] 8+9 = 17 = (1.305,1.555] 9+8 → θ* = 1.01; 1.455 wrong, 1.405 right → 0.5.
Mean = (7·1 + 3·0.5)/10 = 0.85; population var = (7·0.15² + 3·0.35²)/10 = 0.0525, std = √0.0525 = 0.229128784747792.
(The Python transcription above agrees: [1]*7 + [0.5]*3, θ* = [1.01]*7 + [0.91, 1.01, 1.01].)
*/
const H_S = [0.305, 0.405, 0.505, 0.605, 0.705, 0.805, 0.905, 1.005, 1.305, 1.455];
const H_T = [1.555, 1.655, 1.755, 1.855, 1.955, 2.055, 2.155, 2.255, 1.255, 1.405];
const H_DIST = H_S.flatMap((s, f) => [s, H_T[f]!]);
const H_SAME = H_S.flatMap(() => [true, false]);

describe('verification metrics (strategy-specs 7.4–7.7)', () => {
  describe('embeddings and folds', () => {
    it('l2normalize divides by max(‖v‖, 1e-12); pairDistances = ‖n(a) − n(b)‖² = 2 − 2cos', () => {
      // (3,4)/5 = (0.6,0.8); (4,3)/5 = (0.8,0.6); d = 0.2² + 0.2² = 0.08 = 2 − 2·0.96.
      const a = l2normalize(Float32Array.from([3, 4]));
      expect(a[0]).to.be.closeTo(0.6, 1e-7);
      expect(a[1]).to.be.closeTo(0.8, 1e-7);
      expect(Array.from(l2normalize(new Float32Array(3)))).to.deep.equal([0, 0, 0]); // zero vector stays 0, no NaN
      const d = pairDistances([Float32Array.from([3, 4]), Float32Array.from([1, 0]), Float32Array.from([0, 2])],
        [Float32Array.from([4, 3]), Float32Array.from([-5, 0]), Float32Array.from([0, 7])]);
      expect(d[0]).to.be.closeTo(0.08, 1e-6);
      expect(d[1]).to.equal(4); // opposite directions
      expect(d[2]).to.equal(0); // same direction, different norms
      expect(() => pairDistances([new Float32Array(2)], [new Float32Array(3)])).to.throw(/dims 2 and 3/);
    });

    it('unshuffled KFold: the first n mod k folds get one extra pair', () => {
      expect(foldSizes(23, 10)).to.deep.equal([3, 3, 3, 2, 2, 2, 2, 2, 2, 2]);
      expect(foldSizes(6000, 10)).to.deep.equal(new Array(10).fill(600));
      expect(Array.from(contiguousFolds(7, 3))).to.deep.equal([0, 0, 0, 1, 1, 2, 2]);
    });

    it('threshold grids are j·0.01 (400) and j·0.001 (4000), as numpy arange', () => {
      expect(ACCURACY_THRESHOLDS).to.have.length(400);
      expect(ACCURACY_THRESHOLDS[399]).to.equal(399 * 0.01);
      expect(ACCURACY_THRESHOLDS[95]).to.equal(0.9500000000000001); // numpy prints the same
      expect(VAL_THRESHOLDS).to.have.length(4000);
      expect(VAL_THRESHOLDS[949]).to.equal(0.9490000000000001);
    });
  });

  describe('kfoldAccuracy (7.4)', () => {
    it('hand case H20: θ* per fold, accuracies, mean, population std, held-out predictions', () => {
      const r = kfoldAccuracy(H_DIST, H_SAME);
      expect(r.foldAccuracies).to.deep.equal([1, 1, 1, 1, 1, 1, 1, 0.5, 0.5, 0.5]);
      expect(r.thresholds).to.deep.equal([...new Array(7).fill(101 * 0.01), 91 * 0.01, 101 * 0.01, 101 * 0.01]);
      expect(r.accuracy).to.be.closeTo(0.85, EPS);
      expect(r.std).to.be.closeTo(Math.sqrt(0.0525), EPS);
      // Folds 0–6: same right (true), different right (false); folds 7–9 predict "different" for both.
      expect(r.predictions).to.deep.equal([...new Array(7).fill([true, false]).flat(), ...new Array(6).fill(false)]);
    });

    it('prediction is strict d < θ: a distance equal to a threshold is "different"', () => {
      // 2 folds; each fold = same 0.5, different 0.7. Grid [0.5, 0.6]:
      // θ=0.5: 0.5 < 0.5 false → same wrong, acc 1/2; θ=0.6: both right → θ* = 0.6, held-out acc 1.
      // With d ≤ θ, θ = 0.5 would already be perfect and would be chosen.
      const r = kfoldAccuracy([0.5, 0.7, 0.5, 0.7], [true, false, true, false], { folds: 2, thresholds: [0.5, 0.6] });
      expect(r.thresholds).to.deep.equal([0.6, 0.6]);
      expect(r.foldAccuracies).to.deep.equal([1, 1]);
      expect(r.std).to.equal(0);
    });

    it('n not divisible by 10 (23 separable pairs): fold sizes 3,3,3,2…, θ* = 0.51 (first grid θ > 0.5)', () => {
      const same = Array.from({ length: 23 }, (_, i) => i % 3 !== 0);
      const r = kfoldAccuracy(same.map((s) => (s ? 0.5 : 1.5)), same);
      expect(r.foldAccuracies).to.deep.equal(new Array(10).fill(1));
      expect(r.thresholds).to.deep.equal(new Array(10).fill(51 * 0.01));
      expect(r.accuracy).to.equal(1);
      expect(r.std).to.equal(0);
    });

    for (const [name, ref] of Object.entries(REF)) {
      it(`matches the insightface calculate_roc transcription on ${name} (${ref.n} pairs${ref.quant ? ', distances on a 0.05 lattice: ties with grid thresholds' : ''})`, () => {
        const { dist, same } = gen(ref.seed, ref.n, ref.quant);
        expect(same.filter(Boolean)).to.have.length(ref.nSame);
        const r = kfoldAccuracy(Float64Array.from(dist), same);
        expect(r.foldAccuracies).to.deep.equal(ref.fold); // counts / fold size: exact
        expect(r.thresholds).to.deep.equal(ref.theta); // grid values: exact
        expect(r.accuracy).to.be.closeTo(ref.acc, EPS);
        expect(r.std).to.be.closeTo(ref.std, EPS);
        expect(r.predictions.filter(Boolean)).to.have.length(ref.predSame);
        expect(r.predictions.reduce((a, p, i) => a + (p ? i : 0), 0)).to.equal(ref.predIdxSum);
      });
    }

    it('NaN distance counts as "different" (numpy: NaN < θ is false); bad input throws', () => {
      const r = kfoldAccuracy([NaN, 1.5, 0.2, 1.5], [true, false, true, false], { folds: 2 });
      expect(r.predictions[0]).to.equal(false);
      expect(() => kfoldAccuracy([0.1, 0.2], [true], {})).to.throw(/2 values but 1 labels/);
      expect(() => kfoldAccuracy([0.1, 0.2], [true, false])).to.throw(/2 pairs cannot be split into 10 folds/);
      expect(() => kfoldAccuracy([0.1, 0.2], [true, false], { folds: 1 })).to.throw(/≥ 2/);
    });

    it('singleBestAccuracy (7.7 option singleBest): one first-maximal θ on the whole set', () => {
      // H20 over all 20 pairs: regions tie at 18 → first = 1.01, accuracy 18/20.
      expect(singleBestAccuracy(H_DIST, H_SAME)).to.deep.equal({ accuracy: 0.9, threshold: 101 * 0.01 });
    });
  });

  describe('valAtFar (7.5)', () => {
    /*
    Hand case V16, 2 folds of 8 (4 same, 4 different), target FAR 0.25:
      fold 0: same 0.1005 0.2005 0.3005 0.4005 | diff 0.2505 0.5005 0.6005 0.7005
      fold 1: same 0.1505 0.2505 0.3505 0.4505 | diff 0.3005 0.5505 0.6505 0.7505
    Held-out fold 0, train = fold 1: FAR_train = 0 for θ ≤ 0.300, 0.25 for 0.301…0.550, 0.5 for 0.551…0.650,
      0.75 for 0.651…0.750, 1 from 0.751.
      maxThresholdAtFar: θ = 0.550 → same all < 0.55: VAL 1; diff 0.2505, 0.5005: FAR 0.5.
      interp: collapsed (FAR, θ) = (0,0) (.25,.301) (.5,.551) (.75,.651) (1,.751); target on a knot → θ = 0.301
        → VAL 3/4 (0.1005 0.2005 0.3005), FAR 1/4 (0.2505).
    Held-out fold 1, train = fold 0: FAR_train = 0 to 0.250, 0.25 for 0.251…0.500, 0.5 for 0.501…0.600, …
      max: θ = 0.500 → VAL 4/4, FAR 1/4 (0.3005).   interp: θ = 0.251 → VAL 2/4, FAR 0.
    max: VAL [1, 1] → 1 ± 0, FAR mean 0.375.   interp: VAL [0.75, 0.5] → 0.625 ± 0.125, FAR mean 0.125.
    Target 0.3 (between knots), interp: fold 0 θ = 0.301 + (0.05/0.25)·0.25 = 0.351 → VAL 0.75, FAR 0.25;
      fold 1 θ = 0.251 + 0.05 = 0.301 → VAL 0.5, FAR 0.25 (0.3005 < 0.301) → 0.625 ± 0.125, FAR 0.25.
    (Python transcription above, k=2, agrees.)
    */
    const V_DIST = [0.1005, 0.2005, 0.3005, 0.4005, 0.2505, 0.5005, 0.6005, 0.7005, 0.1505, 0.2505, 0.3505, 0.4505, 0.3005, 0.5505, 0.6505, 0.7505];
    const V_SAME = [true, true, true, true, false, false, false, false, true, true, true, true, false, false, false, false];

    it('hand case V16, rule maxThresholdAtFar (default)', () => {
      const r = valAtFar(V_DIST, V_SAME, { far: 0.25, folds: 2 });
      expect(r.rule).to.equal('maxThresholdAtFar');
      closeAll(r.foldThresholds, [0.55, 0.5]);
      expect(r.foldVal).to.deep.equal([1, 1]);
      expect(r.foldFar).to.deep.equal([0.5, 0.25]);
      expect(r.val).to.equal(1);
      expect(r.std).to.equal(0);
      expect(r.far).to.equal(0.375);
      expect(r.excludedFolds).to.equal(0);
    });

    it('hand case V16, rule interp: target on a knot and between knots', () => {
      const a = valAtFar(V_DIST, V_SAME, { far: 0.25, folds: 2, rule: 'interp' });
      closeAll(a.foldThresholds, [0.301, 0.251]);
      expect(a.foldVal).to.deep.equal([0.75, 0.5]);
      expect([a.val, a.std, a.far]).to.deep.equal([0.625, 0.125, 0.125]);
      const b = valAtFar(V_DIST, V_SAME, { far: 0.3, folds: 2, rule: 'interp' });
      closeAll(b.foldThresholds, [0.351, 0.301]);
      expect(b.foldVal).to.deep.equal([0.75, 0.5]);
      expect(b.foldFar).to.deep.equal([0.25, 0.25]);
    });

    it('FAR_train never reaches the target → θ = 0 (calculate_val), so VAL = FAR = 0', () => {
      // Grid [0, 0.1, 0.2]: no different pair is below 0.2 in either fold, max FAR_train = 0 < 0.25.
      const r = valAtFar(V_DIST, V_SAME, { far: 0.25, folds: 2, thresholds: [0, 0.1, 0.2] });
      expect(r.foldThresholds).to.deep.equal([0, 0]);
      expect([r.val, r.far]).to.deep.equal([0, 0]);
    });

    it('guard: folds without positives (or negatives) give NaN, are excluded and counted', () => {
      // 10 folds of 2; fold 3 = two different pairs, fold 5 = two same pairs; others = (same 0.1005, diff 1.0005).
      // FAR_train = 0 up to θ = 1.000, then 1 → max rule θ = 1.000: VAL 1, FAR 0 on the 8 usable folds.
      const same = Array.from({ length: 20 }, (_, i) => (i >> 1 === 3 ? false : i >> 1 === 5 ? true : i % 2 === 0));
      const dist = same.map((s) => (s ? 0.1005 : 1.0005));
      const r = valAtFar(dist, same, { far: 0.1 });
      expect(r.excludedFolds).to.equal(2);
      expect(r.foldVal[3]).to.be.NaN;
      expect(r.foldVal[5]).to.be.NaN;
      expect(r.foldFar[3]).to.be.NaN;
      expect([r.val, r.std, r.far]).to.deep.equal([1, 0, 0]);
      expect(r.warnings.filter((w) => /excluded/.test(w))).to.have.length(2);
      expect(r.warnings[0]).to.match(/fold 3/);
    });

    for (const [name, ref] of Object.entries(REF)) {
      it(`matches the calculate_val transcription on ${name} (targets 1e-3, 1e-2, 5e-2; both rules)`, () => {
        const { dist, same } = gen(ref.seed, ref.n, ref.quant);
        for (const v of ref.vals) {
          const r = valAtFar(dist, same, { far: v.far, rule: v.rule });
          const what = `${v.far} ${v.rule}`;
          expect(r.val, what).to.be.closeTo(v.val, EPS);
          expect(r.std, what).to.be.closeTo(v.std, EPS);
          expect(r.far, what).to.be.closeTo(v.meanFar, EPS);
          closeAll(r.foldThresholds, v.th);
          expect(r.excludedFolds).to.equal(0);
        }
      });
    }

    it('rejects targets outside (0, 1]', () => {
      expect(() => valAtFar(V_DIST, V_SAME, { far: 0, folds: 2 })).to.throw(/target FAR/);
    });
  });

  describe('ROC, TAR@FAR (7.6), AUC', () => {
    /*
    Hand case R9: positives 0.9 0.8 0.8 0.4; negatives 0.8 0.6 0.3 0.2 0.1 (n_pos 4, n_neg 5).
    Distinct scores descending, (FPR, TPR) predicting "same" iff score ≥ s:
      origin (0,0); 0.9 (0,.25); 0.8 (.2,.75) [tie: 2 pos + 1 neg together]; 0.6 (.4,.75); 0.4 (.4,1);
      0.3 (.6,1); 0.2 (.8,1); 0.1 (1,1).
    AUC (trapezoids): .2·(.25+.75)/2 + .2·.75 + 0 + .2 + .2 + .2 = 0.85.
      Mann–Whitney check: 0.9 beats 5; each 0.8 beats 4 and ties 1 (4.5); 0.4 beats 3 → 17/20 = 0.85.
    Nearest FPR:
      1e-6, 1e-2: nearest FPR is 0, points (0,0) and (0,.25) tie → higher TPR 0.25 at FPR 0.
      0.1: |0 − .1| = |.2 − .1| = 0.1 exactly in float64 → (0,0), (0,.25), (.2,.75) tie → TPR .75, FPR .2.
      0.5: |.4 − .5| = |.6 − .5| (both exact subtractions) → (.4,.75), (.4,1), (.6,1) → TPR 1; among equal
        TPR eval_ijbc's flipud order reports the higher FPR 0.6.
    Largest-TPR-with-FPR ≤ target would give 0.75 at 0.5 (same here) and 0.25 at 0.1 (differs): not this rule.
    */
    const R_SCORES = [0.9, 0.8, 0.8, 0.4, 0.8, 0.6, 0.3, 0.2, 0.1];
    const R_SAME = [true, true, true, true, false, false, false, false, false];

    it('rocCurve: origin plus one point per distinct score (ties grouped)', () => {
      const r = rocCurve(R_SCORES, R_SAME);
      expect(r.fpr).to.deep.equal([0, 0, 0.2, 0.4, 0.4, 0.6, 0.8, 1]);
      expect(r.tpr).to.deep.equal([0, 0.25, 0.75, 0.75, 1, 1, 1, 1]);
      expect(r.thresholds).to.deep.equal([Infinity, 0.9, 0.8, 0.6, 0.4, 0.3, 0.2, 0.1]);
    });

    it('rocAuc: trapezoid over the full ROC, ties count ½', () => {
      expect(rocAuc(R_SCORES, R_SAME)).to.be.closeTo(0.85, EPS);
      expect(rocAuc([1, 1, 1, 1], [true, false, true, false])).to.equal(0.5); // all tied: one diagonal step
      expect(rocAuc([0.1, 0.9], [true, false])).to.equal(0);
      expect(rocAuc([0.9, 0.9], [true, true])).to.be.NaN; // no negatives: undefined
    });

    it('tarAtFar hand case R9: nearest FPR, ties → higher TPR', () => {
      const r = tarAtFar(R_SCORES, R_SAME, [1e-6, 1e-2, 0.1, 0.5]);
      expect(r.tpr).to.deep.equal({ '0.000001': 0.25, '0.01': 0.25, '0.1': 0.75, '0.5': 1 });
      expect(r.fpr).to.deep.equal({ '0.000001': 0, '0.01': 0, '0.1': 0.2, '0.5': 0.6 });
      expect(r.threshold['0.1']).to.equal(0.8);
      expect(Object.keys(tarAtFar(R_SCORES, R_SAME).tpr)).to.deep.equal(TARGETS.map(String)); // default targets
    });

    for (const [name, ref] of Object.entries(REF)) {
      it(`tarAtFar and rocAuc match the eval_ijbc.py / Mann–Whitney references on ${name} (scores 1 − d/2)`, () => {
        const { dist, same } = gen(ref.seed, ref.n, ref.quant);
        const scores = dist.map((d) => 1 - d / 2);
        const r = tarAtFar(scores, same, TARGETS);
        TARGETS.forEach((t, i) => {
          expect(r.tpr[String(t)], `TPR@${t}`).to.equal(ref.tar[i]![0]);
          expect(r.fpr[String(t)], `FPR@${t}`).to.equal(ref.tar[i]![1]);
        });
        expect(rocCurve(scores, same).fpr).to.have.length(ref.rocPoints);
        expect(rocAuc(scores, same)).to.be.closeTo(ref.auc, EPS);
      });
    }

    it('NaN scores are refused', () => {
      expect(() => rocCurve([0.1, NaN], [true, false])).to.throw(/pair 1 is NaN/);
    });
  });

  describe('groupMetrics (7.7)', () => {
    it('mean, std (ddof 1 default, 0 option), SER = max err / min err', () => {
      // acc .95 .90 .97 .92: mean .935; deviations ±.015, ±.035 → Σ² = 2(.000225 + .001225) = .0029
      // std ddof1 = √(.0029/3) = 0.031091263510296, ddof0 = √(.0029/4) = 0.026925824035673
      // errors .05 .10 .03 .08 → SER = .10/.03 = 3.3333…
      const acc = { African: 0.95, Asian: 0.9, Caucasian: 0.97, Indian: 0.92 };
      const r = groupMetrics(acc);
      expect(r.ddof).to.equal(1);
      expect(r.mean).to.be.closeTo(0.935, EPS);
      expect(r.std!).to.be.closeTo(Math.sqrt(0.0029 / 3), EPS);
      expect(r.ser!).to.be.closeTo(10 / 3, 1e-9);
      expect(r.errors['Caucasian']).to.be.closeTo(0.03, EPS);
      expect(r.serInfinite).to.equal(false);
      expect(groupMetrics(acc, { ddof: 0 }).std!).to.be.closeTo(Math.sqrt(0.0029 / 4), EPS);
    });

    it('guards: a zero-error group → SER null + flag; fewer than 2 groups → std null; percentages refused', () => {
      const z = groupMetrics({ A: 1, B: 0.9 });
      expect(z.ser).to.equal(null);
      expect(z.serInfinite).to.equal(true);
      expect(z.warnings.join()).to.match(/"A" has zero error/);
      expect(z.std!).to.be.closeTo(Math.sqrt(0.005), EPS); // (.05² + .05²)/1
      const one = groupMetrics({ Only: 0.9 });
      expect(one.std).to.equal(null);
      expect(one.stdUndefined).to.equal(true);
      expect(one.ser).to.be.closeTo(1, EPS);
      expect(() => groupMetrics({ A: 99.5 })).to.throw(/fraction/);
      expect(() => groupMetrics({})).to.throw(/no groups/);
    });
  });

  describe('labelledGroupBreakdown (7.7 LFW rule)', () => {
    it('hand case: only pairs whose two identities carry the same single label count', () => {
      const labels = { A: 'caucasian', B: 'caucasian', C: 'african', D: 'african,caucasian', E: ' african ' };
      const p = (a: string, b: string, same: boolean) => ({ a: { name: a }, b: { name: b }, same });
      const pairs = [p('A', 'A', true), p('A', 'B', false), p('A', 'B', false), p('C', 'C', true), p('C', 'E', false),
        p('D', 'D', true), p('A', 'D', false), p('A', 'X', false), p('B', 'B', true)];
      const pred = [true, true, false, false, true, true, true, true, false];
      // caucasian: A-A (gen, TP), A-B ×2 (imp, one FP), B-B (gen, missed) → TPR 1/2, FPR 1/2;
      // african: C-C (gen, missed), C-E (imp, FP; " african " trims to a single label) → TPR 0, FPR 1;
      // D (two labels) and X (unlabelled) pairs are excluded.
      expect(labelledGroupBreakdown(pairs, labels, pred)).to.deep.equal([
        { group: 'caucasian', pairs: 4, genuine: 2, impostor: 2, truePositives: 1, falsePositives: 1, tpr: 0.5, fpr: 0.5 },
        { group: 'african', pairs: 2, genuine: 1, impostor: 1, truePositives: 0, falsePositives: 1, tpr: 0, fpr: 1 },
      ]);
      expect(labelledGroupBreakdown([p('A', 'A', true)], labels, [true])[0]!.fpr).to.equal(null);
    });

    it('real LFW View 2 + lfw_race_dict.json give the spec 7.7 counts', async function () {
      const dir = path.resolve('../shared/data/lfw-deepfunneled');
      const pairsFile = path.join(dir, 'pairs.txt'), dict = path.join(dir, 'annotations/lfw_race_dict.json');
      if (!existsSync(pairsFile) || !existsSync(dict)) {
        this.test!.title += ` (skipped: ${pairsFile} or ${dict} absent)`;
        this.skip();
      }
      const pairs = await parsePairsFile(pairsFile);
      const labels = JSON.parse(await readFile(dict, 'utf8')) as Record<string, string>;
      const rows = labelledGroupBreakdown(pairs, labels, pairs.map(() => true));
      const counts = Object.fromEntries(rows.map((r) => [r.group, [r.pairs, r.genuine, r.impostor]]));
      expect(counts).to.deep.equal({
        caucasian: [824, 772, 52], african: [51, 51, 0], latino: [25, 25, 0],
        eastasian: [18, 18, 0], asianindian: [5, 5, 0], pacificislander: [1, 1, 0],
      });
    });
  });
});
