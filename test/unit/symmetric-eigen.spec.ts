import { expect } from 'chai';
import { symmetricEigen } from '../../data-sources/latent-generator/symmetric-eigen.js';

// a_ij = sin(1.7i + 0.3j) + cos(0.5ij), symmetrised: A + Aᵀ. Eigenvalues from numpy.linalg.eigh
// (test/fixtures/symmetric_eigen_reference.py), descending.
const REFERENCE: Record<number, number[]> = {
  6: [8.473390692495162, 5.07947225111462, 3.1298168564671576, -0.5340218782985882, -4.739045063569608, -6.5669033775382255],
  9: [9.82428020478875, 7.412794748651251, 4.510181836595907, 4.46922631444784, 3.5152085910358104, -0.27083144125097136, -4.270005708372922, -6.976435359047213, -8.437548338793505],
};

function sym(n: number): Float64Array {
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) a[i * n + j] = Math.sin(1.7 * i + 0.3 * j) + Math.cos(0.5 * i * j);
  const s = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) s[i * n + j] = a[i * n + j]! + a[j * n + i]!;
  return s;
}

/** max |A v − λ v| over all pairs, and max |V Vᵀ − I|. */
function residuals(a: Float64Array, n: number, values: Float64Array, vectors: Float64Array): { eig: number; orth: number } {
  let eig = 0, orth = 0;
  for (let k = 0; k < n; k++) {
    for (let i = 0; i < n; i++) {
      let av = 0;
      for (let j = 0; j < n; j++) av += a[i * n + j]! * vectors[k * n + j]!;
      eig = Math.max(eig, Math.abs(av - values[k]! * vectors[k * n + i]!));
    }
    for (let l = 0; l < n; l++) {
      let dot = 0;
      for (let j = 0; j < n; j++) dot += vectors[k * n + j]! * vectors[l * n + j]!;
      orth = Math.max(orth, Math.abs(dot - (k === l ? 1 : 0)));
    }
  }
  return { eig, orth };
}

describe('symmetric eigen-decomposition (Householder + implicit QL)', () => {
  for (const n of [6, 9]) {
    it(`${n}×${n}: eigenvalues match numpy; A v = λ v and V Vᵀ = I to 1e-12`, () => {
      const a = sym(n);
      const { values, vectors } = symmetricEigen(a, n);
      Array.from(values).forEach((v, i) => expect(v).to.be.closeTo(REFERENCE[n]![i]!, 1e-12));
      const r = residuals(a, n, values, vectors);
      expect(r.eig).to.be.below(1e-12);
      expect(r.orth).to.be.below(1e-12);
    });
  }

  it('repeated eigenvalues and an already-diagonal matrix (no reflections needed)', () => {
    const a = new Float64Array(16);
    [3, 1, 3, 2].forEach((v, i) => (a[i * 4 + i] = v));
    const { values, vectors } = symmetricEigen(a, 4);
    expect(Array.from(values)).to.deep.equal([3, 3, 2, 1]);
    expect(residuals(a, 4, values, vectors).orth).to.be.below(1e-15);
  });

  it('a rank-2 Gram matrix (the PCA case): two positive eigenvalues, the rest 0', () => {
    // Rows x_i = (i, 1) for i = 0..4: G = X Xᵀ (g_ij = ij + 1) has rank 2.
    const n = 5;
    const g = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) g[i * n + j] = i * j + 1;
    const { values } = symmetricEigen(g, n);
    // Nonzero eigenvalues of X Xᵀ = those of XᵀX = [[Σi², Σi], [Σi, n]] = [[30, 10], [10, 5]]:
    // λ = (35 ± √(25² + 4·100)) / 2 = (35 ± √1025) / 2.
    expect(values[0]).to.be.closeTo((35 + Math.sqrt(1025)) / 2, 1e-12);
    expect(values[1]).to.be.closeTo((35 - Math.sqrt(1025)) / 2, 1e-12);
    for (let i = 2; i < n; i++) expect(Math.abs(values[i]!)).to.be.below(1e-12);
  });
});
