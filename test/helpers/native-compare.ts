import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { NATIVE_BACKEND, nativeKernelStats, resetNativeKernelStats } from '../../core/backends/native/backend.js';
import { seeded } from './seeded.js';

const size = (s: readonly number[]) => s.reduce((p, q) => p * q, 1);

/** Relative tolerance of the kernel comparisons (float32 sums in another order). */
export const TOL = 1e-5;

/** max |a-b| / (max|b| + 1e-6), b being the cpu reference; NaN must match NaN. */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).to.equal(b.length);
  let d = 0, m = 0;
  for (let i = 0; i < b.length; i++) {
    if (Number.isNaN(b[i]!)) { expect(Number.isNaN(a[i]!), `NaN at ${i}`).to.equal(true); continue; }
    d = Math.max(d, Math.abs(a[i]! - b[i]!));
    m = Math.max(m, Math.abs(b[i]!));
  }
  return d / (m + 1e-6);
}

/** Runs f on a backend with seeded inputs of the given shapes; returns every output's values. */
export async function runOn(backend: string, shapes: readonly (readonly number[])[], f: (...xs: tf.Tensor[]) => tf.Tensor | tf.Tensor[], seed = 1): Promise<Float32Array[]> {
  expect(await tf.setBackend(backend)).to.equal(true);
  const outs = tf.tidy(() => {
    const xs = shapes.map((s, i) => tf.tensor(seeded(size(s), seed + 7 * i), [...s]));
    const r = f(...xs);
    return Array.isArray(r) ? r : [r];
  });
  const vals = outs.map((t) => Float32Array.from(t.dataSync() as ArrayLike<number>));
  tf.dispose(outs);
  return vals;
}

/**
 * The computation on cpu-native and on the cpu reference, every output within `tol`; and each kernel in `native`
 * ran natively on cpu-native, at least once and never on the reference kernel (a kernel that silently declines fails).
 */
export async function compareWithCpu(what: string, shapes: readonly (readonly number[])[], f: (...xs: tf.Tensor[]) => tf.Tensor | tf.Tensor[],
  native: readonly string[], tol = TOL): Promise<void> {
  resetNativeKernelStats();
  const got = await runOn(NATIVE_BACKEND, shapes, f);
  const s = nativeKernelStats();
  const want = await runOn('cpu', shapes, f);
  expect(got.length).to.equal(want.length);
  got.forEach((g, i) => expect(relErr(g, want[i]!), `${what} output ${i}`).to.be.below(tol));
  for (const k of native) {
    expect(s.native.get(k) ?? 0, `${what}: ${k} ran natively`).to.be.above(0);
    expect(s.fallback.get(k) ?? 0, `${what}: ${k} never fell back (${[...s.reasons.keys()].join('; ')})`).to.equal(0);
  }
}

/** Forward output and the gradients with respect to every input of sum(f(xs) · r), r seeded. */
export function withGrads(f: (...xs: tf.Tensor[]) => tf.Tensor) {
  return (...xs: tf.Tensor[]): tf.Tensor[] => {
    const y = f(...xs);
    const r = tf.tensor(seeded(y.size, 99), y.shape);
    const g = tf.grads((...a: tf.Tensor[]) => tf.sum(tf.mul(f(...a), r)))(xs);
    return [y, ...g];
  };
}

/** An explicit NHWC padding. */
export const ex = (t: number, b: number, l: number, r: number): tf.backend_util.ExplicitPadding => [[0, 0], [t, b], [l, r], [0, 0]];
