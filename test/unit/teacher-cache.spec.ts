import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { TeacherCache } from '../../core/engine/teacher-cache.js';
import { sampleKey, type Batch } from '../../core/interfaces/data-source.js';
import type { Teacher } from '../../core/interfaces/teacher.js';

/** A teacher whose embedding of an image is its per-channel mean; counts the images it embeds. */
function countingTeacher(): Teacher & { embedded: number } {
  const t = {
    name: 'mean', embeddingDim: 3, paramCount: 0, weightsHash: 'x', embedded: 0,
    contract: { inputSize: [2, 2], colour: 'rgb', normalise: 'raw255', crop: 'none' },
    async embed(x: tf.Tensor4D) { t.embedded += x.shape[0]; return tf.mean(x, [1, 2]) as tf.Tensor2D; },
    dispose() {},
  };
  return t as unknown as Teacher & { embedded: number };
}

/** Image i is constant (i, 2i, 3i) per channel, so its embedding is (i, 2i, 3i). */
function batch(values: number[], cacheableSamples?: boolean[]): Batch {
  const images = tf.tidy(() => tf.mul(tf.ones([values.length, 2, 2, 3]), tf.tensor4d(values.flatMap((v) => [v, 2 * v, 3 * v]), [values.length, 1, 1, 3])) as tf.Tensor4D);
  return { images, keys: values.map((v) => sampleKey(`k${v}`)), cacheable: cacheableSamples ? cacheableSamples.every(Boolean) : true, ...(cacheableSamples ? { cacheableSamples } : {}) };
}

describe('teacher embedding cache', () => {
  it('per-sample cacheability: cached rows are reused, uncacheable samples are always embedded, order kept', async () => {
    const teacher = countingTeacher();
    const cache = new TeacherCache(teacher);
    const b1 = batch([1, 2, 3, 4], [true, false, true, false]);
    const e1 = await cache.embed(b1);
    expect(teacher.embedded).to.equal(4);
    expect(e1.arraySync()).to.deep.equal([[1, 2, 3], [2, 4, 6], [3, 6, 9], [4, 8, 12]]);
    // Same keys, new synthetic images (5, 6) under the uncacheable keys k2, k4.
    const b2 = batch([1, 5, 3, 6], [true, false, true, false]);
    (b2 as { keys: unknown }).keys = ['k1', 'k2', 'k3', 'k4'].map(sampleKey);
    const e2 = await cache.embed(b2);
    expect(teacher.embedded, 'only the two uncacheable samples').to.equal(6);
    expect(e2.arraySync()).to.deep.equal([[1, 2, 3], [5, 10, 15], [3, 6, 9], [6, 12, 18]]);
    expect(cache.size, 'uncacheable rows are not stored').to.equal(2);
    expect([cache.hits, cache.misses]).to.deep.equal([2, 2]);
    tf.dispose([b1.images, b2.images, e1, e2]);
  });

  it('whole-batch flags: cacheable batches hit after the first pass; uncacheable ones never store', async () => {
    const teacher = countingTeacher();
    const cache = new TeacherCache(teacher);
    for (let i = 0; i < 2; i++) { const b = batch([7, 8]); tf.dispose([b.images, await cache.embed(b)]); }
    expect(teacher.embedded).to.equal(2);
    const s = batch([9]);
    (s as { cacheable: boolean }).cacheable = false;
    tf.dispose([await cache.embed(s), await cache.embed(s), s.images]);
    expect(teacher.embedded).to.equal(4);
    expect(cache.size).to.equal(2);
  });
});
