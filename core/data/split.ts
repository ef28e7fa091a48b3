/**
 * Splits `total` into integer parts proportional to `weights` by the largest-remainder
 * (Hamilton) method: floor shares first, then one more to the parts with the largest
 * fractional remainders (ties to the earlier part). Deterministic; parts sum to `total`.
 */
export function splitByWeights(total: number, weights: readonly number[]): number[] {
  if (!Number.isInteger(total) || total < 0) throw new Error(`splitByWeights: total must be a non-negative integer, got ${total}`);
  const sum = weights.reduce((a, b) => a + b, 0);
  if (weights.length === 0 || !(sum > 0) || weights.some((w) => !(w >= 0))) throw new Error(`splitByWeights: weights must be ≥ 0 with a positive sum, got [${weights.join(', ')}]`);
  const exact = weights.map((w) => (total * w) / sum);
  const out = exact.map(Math.floor);
  let left = total - out.reduce((a, b) => a + b, 0);
  const byRemainder = exact.map((e, i) => ({ i, r: e - Math.floor(e) })).sort((a, b) => b.r - a.r || a.i - b.i);
  for (const { i } of byRemainder) { if (left-- <= 0) break; out[i] = out[i]! + 1; }
  return out;
}
