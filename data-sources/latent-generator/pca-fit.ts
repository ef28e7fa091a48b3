import { symmetricEigen } from './symmetric-eigen.js';

/** A linear face model: x ≈ mean + Σ_k z_k u_k with z_k ~ N(0, σ_k²). */
export interface PcaModel {
  /** Image side in px; D = size·size·3 (HWC, RGB, 0..255). */
  readonly size: number;
  readonly mean: Float32Array;
  /** [k, D] row-major, orthonormal rows (principal directions), sign fixed: largest |entry| positive. */
  readonly components: Float32Array;
  /** [k] standard deviation of the data along each component: √(λ_k / (N − 1)). */
  readonly sigma: Float32Array;
  /** Images the model was fitted on. */
  readonly images: number;
  /** Σ_{j<k} λ_j / Σ_j λ_j: the share of the variance the k components keep. */
  readonly explained: number;
}

/**
 * PCA by the Gram ("snapshot") method, exact to rounding: with the centred data Xc (N×D, N ≪ D),
 * G = Xc Xcᵀ = V Λ Vᵀ gives the principal directions u_k = Xcᵀ v_k / √λ_k and the variances
 * λ_k / (N − 1) (Sirovich 1987; Turk & Pentland 1991, "eigenfaces"). Float64 throughout.
 * `images` is N×D row-major 0..255.
 */
export function fitPca(images: Float32Array, n: number, size: number, k: number): PcaModel {
  const d = size * size * 3;
  if (images.length !== n * d) throw new Error(`pca fit: ${images.length} values for ${n} images of ${size}×${size}×3`);
  if (k > n - 1) throw new Error(`pca fit: ${k} components need at least ${k + 1} images (N − 1 ≥ k), got ${n}`);
  const mean64 = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    const row = i * d;
    for (let j = 0; j < d; j++) mean64[j] = mean64[j]! + images[row + j]!;
  }
  for (let j = 0; j < d; j++) mean64[j] = mean64[j]! / n;
  // Centred data kept as float32 (half the memory; 6e-8 relative rounding), sums in float64.
  const xc = new Float32Array(n * d);
  for (let i = 0; i < n; i++) {
    const row = i * d;
    for (let j = 0; j < d; j++) xc[row + j] = images[row + j]! - mean64[j]!;
  }
  const g = gram(xc, n, d);
  let trace = 0;
  for (let i = 0; i < n; i++) trace += g[i * n + i]!;
  const { values, vectors } = symmetricEigen(g, n);
  const components = new Float32Array(k * d), sigma = new Float32Array(k);
  const u = new Float64Array(d);
  for (let c = 0; c < k; c++) {
    const lambda = values[c]!;
    if (!(lambda > 1e-9 * trace)) throw new Error(`pca fit: component ${c + 1} has no variance (λ = ${lambda.toExponential(2)}): the ${n} images span fewer than ${k} directions; lower components`);
    u.fill(0);
    for (let i = 0; i < n; i++) {
      const vi = vectors[c * n + i]!, row = i * d;
      for (let j = 0; j < d; j++) u[j] = u[j]! + vi * xc[row + j]!;
    }
    let big = 0;
    for (let j = 0; j < d; j++) if (Math.abs(u[j]!) > Math.abs(big)) big = u[j]!;
    const scale = (big < 0 ? -1 : 1) / Math.sqrt(lambda);
    for (let j = 0; j < d; j++) components[c * d + j] = u[j]! * scale;
    sigma[c] = Math.sqrt(lambda / (n - 1));
  }
  let kept = 0;
  for (let c = 0; c < k; c++) kept += values[c]!;
  return { size, mean: Float32Array.from(mean64), components, sigma, images: n, explained: trace > 0 ? kept / trace : 1 };
}

/** G = Xc Xcᵀ (N×N), blocked over D so a block of every row stays in cache. */
function gram(xc: Float32Array, n: number, d: number): Float64Array {
  const g = new Float64Array(n * n);
  const block = 4096;
  for (let b0 = 0; b0 < d; b0 += block) {
    const b1 = Math.min(d, b0 + block);
    for (let i = 0; i < n; i++) {
      const ri = i * d;
      for (let j = i; j < n; j++) {
        const rj = j * d;
        let s = 0;
        for (let t = b0; t < b1; t++) s += xc[ri + t]! * xc[rj + t]!;
        g[i * n + j] = g[i * n + j]! + s;
      }
    }
  }
  for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) g[i * n + j] = g[j * n + i]!;
  return g;
}
