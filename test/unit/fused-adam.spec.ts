import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { NATIVE_BACKEND } from '../../core/backends/native/backend.js';
import { FusedAdam } from '../../core/engine/optimizer.js';
import { useNativeBackend } from '../helpers/native.js';
import { seeded } from '../helpers/seeded.js';

// Variable sizes: tiny, mid, and above the native kernel's threading threshold.
const SHAPES: readonly (readonly number[])[] = [[3], [17, 5], [64, 64, 3], [300, 256]];
const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** Runs `steps` Adam updates with seeded gradients on `backend`; returns every variable and slot, and the β^t products. */
async function train(backend: string, make: () => tf.Optimizer, steps: number, lrs: readonly number[]) {
  expect(await tf.setBackend(backend)).to.equal(true);
  const vars = SHAPES.map((s, i) => tf.variable(tf.tensor(seeded(size(s), 100 + i), [...s]), true, `fused_adam_test_${backend}_${i}`));
  const opt = make();
  for (let t = 0; t < steps; t++) {
    (opt as unknown as { learningRate: number }).learningRate = lrs[t % lrs.length]!;
    const grads = Object.fromEntries(vars.map((v, i) => [v.name, tf.tensor(seeded(v.size, 1000 * t + i), v.shape)]));
    opt.applyGradients(grads as unknown as tf.NamedTensorMap);
    tf.dispose(Object.values(grads));
  }
  const weights = await opt.getWeights();
  const out = {
    vars: vars.map((v) => Array.from(v.dataSync())),
    slots: weights.filter((w) => w.name.endsWith('/m') || w.name.endsWith('/v'))
      .map((w) => ({ name: w.name.replace(`fused_adam_test_${backend}_`, ''), values: Array.from(w.tensor.dataSync()) })),
    scalars: [(opt as unknown as { accBeta1: tf.Variable }).accBeta1.dataSync()[0], (opt as unknown as { accBeta2: tf.Variable }).accBeta2.dataSync()[0]],
    iterations: opt.iterations,
  };
  tf.dispose(weights.filter((w) => !(w.tensor instanceof tf.Variable)).map((w) => w.tensor));
  opt.dispose();
  tf.dispose(vars);
  return out;
}

describe('FusedAdam', function () {
  this.timeout(60_000);
  useNativeBackend();

  it('updates variables, moments and β^t bit for bit as tf.train.adam on the cpu reference (20 steps, varying lr)', async () => {
    const lrs = [1e-3, 0.02, 3e-4];
    const want = await train('cpu', () => tf.train.adam(0.001, 0.9, 0.999, 1e-7), 20, lrs);
    const got = await train(NATIVE_BACKEND, () => new FusedAdam(0.001, 0.9, 0.999, 1e-7), 20, lrs);
    expect(got.iterations).to.equal(20);
    expect(got.scalars).to.deep.equal(want.scalars);
    expect(got.slots.map((s) => s.name)).to.deep.equal(want.slots.map((s) => s.name));
    got.slots.forEach((s, i) => expect(s.values, s.name).to.deep.equal(want.slots[i]!.values));
    got.vars.forEach((v, i) => expect(v, `variable ${i}`).to.deep.equal(want.vars[i]!));
    // And the update did something: every variable moved from its start.
    got.vars.forEach((v, i) => expect(v).to.not.deep.equal(Array.from(seeded(v.length, 100 + i))));
  });

  it('falls back to tfjs Adam on backends without the fused op, with the same result', async () => {
    const want = await train('cpu', () => tf.train.adam(0.01), 5, [0.01]);
    const got = await train('cpu', () => new FusedAdam(0.01, 0.9, 0.999), 5, [0.01]);
    expect(got).to.deep.equal(want);
  });

  it('keeps the tensor count flat across updates', async () => {
    expect(await tf.setBackend(NATIVE_BACKEND)).to.equal(true);
    const v = tf.variable(tf.tensor(seeded(40_000, 5), [200, 200]), true, 'fused_adam_flat');
    const opt = new FusedAdam(0.01, 0.9, 0.999);
    const step = () => { const g = tf.tensor(seeded(40_000, 6), [200, 200]); opt.applyGradients({ [v.name]: g } as unknown as Parameters<FusedAdam["applyGradients"]>[0]); g.dispose(); };
    step();
    const n = tf.memory().numTensors;
    for (let i = 0; i < 10; i++) step();
    expect(tf.memory().numTensors).to.equal(n);
    opt.dispose();
    v.dispose();
  });
});
