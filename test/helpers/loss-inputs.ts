// Deterministic inputs for the loss tests; the python twin is test/fixtures/loss-refs/inputs.py.
import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';

/** grid(rows, cols, seed)[i][j] = round(sin(0.731·seed + 1.618·i + 0.577·j·(i+1) + 0.3·j²), 3) · scale. */
export function grid(rows: number, cols: number, seed: number, scale = 1): number[][] {
  return Array.from({ length: rows }, (_, i) => Array.from({ length: cols }, (_, j) =>
    (Math.round(Math.sin(0.731 * seed + 1.618 * i + 0.577 * j * (i + 1) + 0.3 * j * j) * 1000) / 1000) * scale));
}

/** Σ_k x_k·(1 + k mod 7) over the row-major float32 values: the python scripts print the same number. */
export function checksum(x: number[][]): number {
  const f = Float32Array.from(x.flat());
  return f.reduce((acc, v, k) => acc + v * (1 + (k % 7)), 0);
}

export const t2 = (x: number[][]): tf.Tensor2D => tf.tensor2d(x);

/** max |a − b| / max |b|: relative error of a against the reference b. */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).to.equal(b.length);
  let d = 0, m = 0;
  for (let i = 0; i < b.length; i++) {
    d = Math.max(d, Math.abs(a[i]! - b[i]!));
    m = Math.max(m, Math.abs(b[i]!));
  }
  return d / Math.max(m, 1e-30);
}

/** Gradient of a scalar function w.r.t. one input, read back as a flat array; disposes everything. */
export function gradOf(f: (x: tf.Tensor2D) => tf.Scalar, x: number[][]): Float32Array {
  return tf.tidy(() => tf.grad((v: tf.Tensor) => f(v as tf.Tensor2D))(tf.tensor2d(x)).dataSync() as Float32Array);
}

/** Asserts that `call` leaves exactly `returned` new tensors alive (those it hands back), then frees them. */
export function expectNoLeak(call: () => tf.TensorContainer, returned: number): void {
  const before = tf.memory().numTensors;
  const out = call();
  expect(tf.memory().numTensors - before, 'tensors alive after the call').to.equal(returned);
  tf.dispose(out);
  expect(tf.memory().numTensors).to.equal(before);
}
