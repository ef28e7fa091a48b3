import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../core/backends/select.js';
import { seeded } from '../helpers/seeded.js';


function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0, m = 0;
  for (let i = 0; i < b.length; i++) {
    d = Math.max(d, Math.abs(a[i]! - b[i]!));
    m = Math.max(m, Math.abs(b[i]!));
  }
  return d / (m + 1e-6);
}

/** batchNorm and its gradients with respect to x, mean, variance, offset and scale, on one backend. */
async function bnGrads(backend: string, x: number[], c: number): Promise<Float32Array[]> {
  await selectBackend(backend as 'wasm' | 'cpu');
  const out = tf.tidy(() => {
    const xs = [x, [c], [c], [c], [c]].map((s, i) => tf.tensor(seeded(s.reduce((p, q) => p * q, 1), 3 + i), s));
    const r = tf.tensor(seeded(xs[0]!.size, 17), x);
    const f = (xx: tf.Tensor, m: tf.Tensor, v: tf.Tensor, o: tf.Tensor, s: tf.Tensor) => tf.sum(tf.mul(tf.batchNorm(xx, m, tf.add(tf.abs(v), 0.2), o, s, 1e-3), r));
    return tf.grads(f as (...a: tf.Tensor[]) => tf.Tensor)(xs);
  });
  const vals = out.map((t) => Float32Array.from(t.dataSync()));
  tf.dispose(out);
  return vals;
}

describe('BatchNorm gradient without Tile (wasm) against tfjs-core\'s own gradient (cpu)', function () {
  this.timeout(60_000);
  after(async () => { await selectBackend('cpu'); });

  for (const [x, c] of [[[2, 5, 5, 8], 8], [[3, 4, 6, 33], 33], [[16, 12], 12]] as [number[], number][]) {
    it(`x=[${x}]: dx, dMean, dVariance, dOffset, dScale within 1e-5`, async () => {
      const got = await bnGrads('wasm', x, c);
      const want = await bnGrads('cpu', x, c);
      expect(got.length).to.equal(5);
      got.forEach((g, i) => {
        expect(g.length).to.equal(want[i]!.length);
        expect(relErr(g, want[i]!), `gradient ${i}`).to.be.below(1e-5);
      });
    });
  }
});
