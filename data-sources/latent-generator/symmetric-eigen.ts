// Full eigen-decomposition of a real symmetric matrix in Float64: Householder reduction to
// tridiagonal form, then the implicit QL iteration with Wilkinson-type shifts on the
// tridiagonal matrix (Golub & Van Loan, "Matrix Computations", §8.3; Press et al.,
// "Numerical Recipes", §11.2–11.3). O(n³): fine for the few-thousand-row Gram matrices of a
// PCA fit, exact to rounding, no dependency.

export interface SymmetricEigen {
  /** Eigenvalues, descending. */
  readonly values: Float64Array;
  /** Row i (length n, unit norm) is the eigenvector of values[i]. */
  readonly vectors: Float64Array;
}

/**
 * Householder step k zeroes a[k+2.., k] with H = I − β v vᵀ (v over rows k+1..n−1); the
 * reflections are accumulated into Qᵀ = H_{n−3} ⋯ H_0, so that A = Q T Qᵀ.
 */
function tridiagonalise(a: Float64Array, n: number): { d: Float64Array; e: Float64Array; qt: Float64Array } {
  const qt = new Float64Array(n * n);
  for (let i = 0; i < n; i++) qt[i * n + i] = 1;
  const v = new Float64Array(n), p = new Float64Array(n), q = new Float64Array(n);
  for (let k = 0; k < n - 2; k++) {
    const lo = k + 1;
    let norm2 = 0;
    for (let i = lo; i < n; i++) norm2 += a[i * n + k]! ** 2;
    const alpha = Math.sqrt(norm2);
    if (alpha === 0) continue; // column already zero below the sub-diagonal: H = I
    const x0 = a[lo * n + k]!;
    const sign = x0 >= 0 ? 1 : -1;
    for (let i = lo; i < n; i++) v[i] = a[i * n + k]!;
    v[lo] = x0 + sign * alpha;
    const beta = 1 / (alpha * (alpha + Math.abs(x0))); // 2 / vᵀv
    // The column (and row) k becomes (…, −sign·α, 0, …, 0).
    for (let i = lo; i < n; i++) { a[i * n + k] = 0; a[k * n + i] = 0; }
    a[lo * n + k] = -sign * alpha; a[k * n + lo] = -sign * alpha;
    // Trailing block B ← H B H = B − v wᵀ − w vᵀ with p = βBv, w = p − (β pᵀv / 2) v.
    let pv = 0;
    for (let i = lo; i < n; i++) {
      let s = 0;
      const row = i * n;
      for (let j = lo; j < n; j++) s += a[row + j]! * v[j]!;
      p[i] = beta * s;
      pv += p[i]! * v[i]!;
    }
    const kk = (beta * pv) / 2;
    for (let i = lo; i < n; i++) q[i] = p[i]! - kk * v[i]!;
    for (let i = lo; i < n; i++) {
      const row = i * n, vi = v[i]!, qi = q[i]!;
      for (let j = lo; j < n; j++) a[row + j] = a[row + j]! - vi * q[j]! - qi * v[j]!;
    }
    // Qᵀ ← H Qᵀ: rows lo..n−1 change.
    for (let c = 0; c < n; c++) p[c] = 0;
    for (let i = lo; i < n; i++) {
      const vi = v[i]!, row = i * n;
      if (vi === 0) continue;
      for (let c = 0; c < n; c++) p[c] = p[c]! + vi * qt[row + c]!;
    }
    for (let i = lo; i < n; i++) {
      const f = beta * v[i]!, row = i * n;
      if (f === 0) continue;
      for (let c = 0; c < n; c++) qt[row + c] = qt[row + c]! - f * p[c]!;
    }
  }
  const d = new Float64Array(n), e = new Float64Array(n);
  for (let i = 0; i < n; i++) d[i] = a[i * n + i]!;
  for (let i = 0; i < n - 1; i++) e[i] = a[i * n + i + 1]!;
  return { d, e, qt };
}

/**
 * Implicit QL on the tridiagonal (d, e) (e[i] couples i and i+1); each plane rotation is
 * also applied to rows i, i+1 of `m` (= Qᵀ), whose rows end as the eigenvectors of A.
 */
function tridiagonalQl(d: Float64Array, e: Float64Array, m: Float64Array, n: number): void {
  const eps = Number.EPSILON;
  for (let l = 0; l < n; l++) {
    let iterations = 0;
    for (;;) {
      let mIdx = l;
      for (; mIdx < n - 1; mIdx++) {
        const dd = Math.abs(d[mIdx]!) + Math.abs(d[mIdx + 1]!);
        if (Math.abs(e[mIdx]!) <= eps * dd) break;
      }
      if (mIdx === l) break;
      if (++iterations > 60) throw new Error(`symmetric eigen: no convergence for eigenvalue ${l} after 60 QL iterations`);
      // Shift from the leading 2×2 block (Wilkinson-type).
      let g = (d[l + 1]! - d[l]!) / (2 * e[l]!);
      let r = Math.hypot(g, 1);
      g = d[mIdx]! - d[l]! + e[l]! / (g + (g >= 0 ? r : -r));
      let s = 1, c = 1, p = 0;
      let i = mIdx - 1;
      let underflow = false;
      for (; i >= l; i--) {
        const f = s * e[i]!, b = c * e[i]!;
        r = Math.hypot(f, g);
        e[i + 1] = r;
        if (r === 0) { d[i + 1] = d[i + 1]! - p; e[mIdx] = 0; underflow = true; break; }
        s = f / r; c = g / r;
        g = d[i + 1]! - p;
        r = (d[i]! - g) * s + 2 * c * b;
        p = s * r;
        d[i + 1] = g + p;
        g = c * r - b;
        const ri = i * n, rj = (i + 1) * n;
        for (let k = 0; k < n; k++) {
          const t = m[rj + k]!;
          m[rj + k] = s * m[ri + k]! + c * t;
          m[ri + k] = c * m[ri + k]! - s * t;
        }
      }
      if (underflow) continue;
      d[l] = d[l]! - p; e[l] = g; e[mIdx] = 0;
    }
  }
}

/** Eigenvalues (descending) and unit eigenvectors of the symmetric n×n matrix `a` (row-major; not modified). */
export function symmetricEigen(a: Float64Array, n: number): SymmetricEigen {
  if (a.length !== n * n) throw new Error(`symmetric eigen: matrix has ${a.length} entries, expected ${n}×${n}`);
  const work = Float64Array.from(a);
  const { d, e, qt } = tridiagonalise(work, n);
  tridiagonalQl(d, e, qt, n);
  const order = Array.from({ length: n }, (_, i) => i).sort((x, y) => d[y]! - d[x]! || x - y);
  const values = new Float64Array(n), vectors = new Float64Array(n * n);
  order.forEach((src, dst) => {
    values[dst] = d[src]!;
    vectors.set(qt.subarray(src * n, (src + 1) * n), dst * n);
  });
  return { values, vectors };
}
