import { expect } from 'chai';
import { averageRanks, decisionAgreement, meanCosine, spearman } from '../../core/eval/agreement.js';

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => { s = (Math.imul(1664525, s) + 1013904223) >>> 0; return s / 4294967296; };
}

/*
Reference numbers: python3 (numpy 2.4.6 only for the float32 vectors; the Spearman reference is plain
Python, scipy.stats.spearmanr 1.17.1 printed alongside as a cross-check):

import numpy as np
from scipy.stats import spearmanr  # cross-check only; the reference below is scipy-free
def lcg(seed):
    s = seed
    while True:
        s = (1664525 * s + 1013904223) % 2**32
        yield s / 4294967296
def avg_ranks(x):  # 1-based, ties share the average rank
    o = sorted(range(len(x)), key=lambda i: x[i]); r = [0.0] * len(x); i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and x[o[j + 1]] == x[o[i]]: j += 1
        for m in range(i, j + 1): r[o[m]] = (i + j) / 2 + 1
        i = j + 1
    return r
def pearson(a, b):
    ma = sum(a) / len(a); mb = sum(b) / len(b)
    sab = sum((p - ma) * (q - mb) for p, q in zip(a, b))
    return sab / (sum((p - ma) ** 2 for p in a) * sum((q - mb) ** 2 for q in b)) ** 0.5
def spearman(x, y): return pearson(avg_ranks(x), avg_ranks(y))
r = lcg(5); x = []; y = []
for i in range(500):
    u = next(r); v = next(r); x.append(u); y.append(u + 0.5 * v)          # continuous, no ties
print('cont', repr(spearman(x, y)), repr(spearmanr(x, y).statistic))
xq = [float(np.floor(a * 8)) for a in x]; yq = [float(np.floor(b * 6)) for b in y]  # heavy ties
print('ties', repr(spearman(xq, yq)), repr(spearmanr(xq, yq).statistic))
# meanCosine: 50 pairs of 16-d float32 vectors in [-1, 1)
r = lcg(9); t = np.array([[2 * next(r) - 1 for _ in range(16)] for _ in range(50)], np.float32)
s = np.array([[2 * next(r) - 1 for _ in range(16)] for _ in range(50)], np.float32)
s = (t.astype(np.float64) + s).astype(np.float32)   # correlated student
t64, s64 = t.astype(np.float64), s.astype(np.float64)
cos = np.sum(t64 * s64, 1) / np.maximum(np.linalg.norm(t64, axis=1) * np.linalg.norm(s64, axis=1), 1e-8)
print('meanCos', repr(np.mean(cos)))

Printed:
cont 0.8963457933831736 np.float64(0.8963457933831736)
ties 0.8741419576875858 np.float64(0.8741419576875858)
meanCos np.float64(0.6935273259372827)
*/
const REF_SPEARMAN_CONT = 0.8963457933831736;
const REF_SPEARMAN_TIES = 0.8741419576875858;
const REF_MEAN_COS = 0.6935273259372827;

function spearmanData(): { x: number[]; y: number[]; xq: number[]; yq: number[] } {
  const r = lcg(5), x: number[] = [], y: number[] = [];
  for (let i = 0; i < 500; i++) { const u = r(), v = r(); x.push(u); y.push(u + 0.5 * v); }
  return { x, y, xq: x.map((a) => Math.floor(a * 8)), yq: y.map((b) => Math.floor(b * 6)) };
}

describe('teacher–student agreement', () => {
  describe('meanCosine', () => {
    it('hand case: cos = t·s / max(‖t‖‖s‖, 1e-8), averaged', () => {
      // (1,0)·(1,1)/√2 = 0.7071…; (0,2)·(0,−3) = −1; zero vector: 0/1e-8 = 0 → mean (0.70710678 − 1 + 0)/3
      const m = meanCosine([Float32Array.from([1, 0]), Float32Array.from([0, 2]), Float32Array.from([0, 0])],
        [Float32Array.from([1, 1]), Float32Array.from([0, -3]), Float32Array.from([5, 5])]);
      expect(m!).to.be.closeTo((Math.SQRT1_2 - 1) / 3, 1e-12);
    });

    it('null when the dimensions differ (no shared embedding space); count mismatch throws', () => {
      expect(meanCosine([new Float32Array(512)], [new Float32Array(128)])).to.equal(null);
      expect(() => meanCosine([new Float32Array(2)], [])).to.throw(/1 teacher embeddings but 0 student/);
      expect(meanCosine([], [])).to.be.NaN;
    });

    it('matches the numpy reference on 50 random 16-d float32 pairs', () => {
      const r = lcg(9);
      const t = Array.from({ length: 50 }, () => Float32Array.from({ length: 16 }, () => 2 * r() - 1));
      const noise = Array.from({ length: 50 }, () => Float32Array.from({ length: 16 }, () => 2 * r() - 1));
      const s = t.map((v, i) => Float32Array.from(v, (a, j) => a + noise[i]![j]!));
      expect(meanCosine(t, s)!).to.be.closeTo(REF_MEAN_COS, 1e-12);
    });
  });

  describe('spearman', () => {
    it('average ranks for ties (hand case)', () => {
      // 10 → 1; 20,20 → (2+3)/2 = 2.5 each; 30 → 4; 5 → … sorted: 5(1) 10(2) 20,20(3.5) 30(5)
      expect(Array.from(averageRanks([10, 20, 20, 30, 5]))).to.deep.equal([2, 3.5, 3.5, 5, 1]);
    });

    it('hand cases: monotone = 1, reversed = −1, ties', () => {
      expect(spearman([1, 2, 3, 4], [10, 20, 30, 1000])).to.be.closeTo(1, 1e-15);
      expect(spearman([1, 2, 3, 4], [4, 3, 2, 1])).to.be.closeTo(-1, 1e-15);
      // x = 1 2 3 4, y = 1 1 2 2 → ranks y 1.5 1.5 3.5 3.5; centred rx −1.5 −.5 .5 1.5, ry −1 −1 1 1
      // Σ rx·ry = 1.5+.5+.5+1.5 = 4; Σ rx² = 5; Σ ry² = 4 → 4/√20 = 0.894427190999916
      expect(spearman([1, 2, 3, 4], [1, 1, 2, 2])).to.be.closeTo(4 / Math.sqrt(20), 1e-15);
    });

    it('matches the plain-Python reference (continuous and heavily tied, 500 values)', () => {
      const d = spearmanData();
      expect(spearman(d.x, d.y)).to.be.closeTo(REF_SPEARMAN_CONT, 1e-12);
      expect(spearman(Float64Array.from(d.xq), d.yq)).to.be.closeTo(REF_SPEARMAN_TIES, 1e-12);
    });

    it('undefined cases give NaN (constant input, < 2 values, NaN); length mismatch throws', () => {
      expect(spearman([1, 1, 1], [1, 2, 3])).to.be.NaN;
      expect(spearman([1], [2])).to.be.NaN;
      expect(spearman([1, NaN, 3], [1, 2, 3])).to.be.NaN;
      expect(() => spearman([1, 2], [1])).to.throw(/lengths differ/);
    });
  });

  describe('decisionAgreement', () => {
    it('share of equal decisions', () => {
      expect(decisionAgreement([true, false, true, true], [true, true, true, false])).to.equal(0.5);
      expect(decisionAgreement([false], [false])).to.equal(1);
      expect(decisionAgreement([], [])).to.be.NaN;
      expect(() => decisionAgreement([true], [])).to.throw(/lengths differ/);
    });
  });
});
