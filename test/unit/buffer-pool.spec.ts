import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { NATIVE_BACKEND, nativeBufferPool } from '../../core/backends/native/backend.js';
import { BufferPool, type PooledStorage } from '../../core/backends/native/buffer-pool.js';
import { useNativeBackend } from '../helpers/native.js';
import { seeded } from '../helpers/seeded.js';

// 64 x 512 floats: above the pool's 16,384-float floor, so native outputs of this size are pooled.
const SHAPE: [number, number] = [64, 512];
const N = SHAPE[0] * SHAPE[1];

describe('cpu-native output buffer pool', function () {
  this.timeout(60_000);
  useNativeBackend();
  beforeEach(async () => { expect(await tf.setBackend(NATIVE_BACKEND)).to.equal(true); });

  const input = (seed: number) => tf.tensor2d(seeded(N, seed), SHAPE);
  /** a + b computed here, independently of tfjs. */
  const sum = (s1: number, s2: number) => { const a = seeded(N, s1), b = seeded(N, s2); return a.map((v, i) => v + b[i]!); };

  it('hands a disposed output to the next one of the same size, and the result is still right', () => {
    const pool = nativeBufferPool()!;
    const [a, b, c, d] = [input(1), input(2), input(3), input(4)];
    const y = tf.add(a, b);
    const reused = pool.stats.reused;
    // Read the values through the backend's storage (not dataSync, which would pin the buffer) before disposing.
    const yBuffer = (tf.backend() as unknown as { data: { get(id: tf.DataId): { values: Float32Array } } }).data.get(y.dataId).values.buffer;
    y.dispose();
    const z = tf.add(c, d);
    const zValues = (tf.backend() as unknown as { data: { get(id: tf.DataId): { values: Float32Array } } }).data.get(z.dataId).values;
    expect(pool.stats.reused).to.equal(reused + 1);
    expect(zValues.buffer).to.equal(yBuffer);
    expect(Array.from(z.dataSync())).to.deep.equal(Array.from(sum(3, 4)));
    tf.dispose([a, b, c, d, z]);
  });

  it('never recycles values a caller has read out (dataSync / data)', async () => {
    const [a, b, c, d, e, f] = [input(5), input(6), input(7), input(8), input(9), input(10)];
    const y1 = tf.add(a, b), y2 = tf.add(c, d);
    const v1 = y1.dataSync(), v2 = await y2.data();
    const want1 = Float32Array.from(v1), want2 = Float32Array.from(v2);
    tf.dispose([y1, y2]);
    // Two new outputs of the same size: had either buffer gone back to the pool, one of them would overwrite it.
    const z1 = tf.add(e, f), z2 = tf.mul(e, f);
    expect(v1).to.deep.equal(want1);
    expect(v2).to.deep.equal(want2);
    expect(Array.from(z1.dataSync())).to.deep.equal(Array.from(sum(9, 10)));
    tf.dispose([a, b, c, d, e, f, z1, z2]);
  });

  it('keeps a buffer alive while a view of it (a contiguous slice) is alive', () => {
    const [a, b, c, d] = [input(11), input(12), input(13), input(14)];
    const y = tf.add(a, b);
    const half = tf.slice(y, [0, 0], [SHAPE[0] / 2, SHAPE[1]]); // the cpu kernel returns a subarray of y's values
    y.dispose();
    const z = tf.add(c, d);
    expect(Array.from(half.dataSync())).to.deep.equal(Array.from(sum(11, 12).subarray(0, N / 2)));
    tf.dispose([a, b, c, d, half, z]);
  });

  it('keeps a buffer while another tensor shares it (reshape, clone, variable assign)', () => {
    const [a, b, c, d] = [input(15), input(16), input(17), input(18)];
    const y = tf.add(a, b);
    const r = tf.reshape(y, [N]);
    const v = tf.variable(y);
    y.dispose();
    const z = tf.add(c, d);
    const want = Array.from(sum(15, 16));
    expect(Array.from(r.dataSync())).to.deep.equal(want);
    expect(Array.from(v.dataSync())).to.deep.equal(want);
    tf.dispose([a, b, c, d, r, v, z]);
  });

  it('stops keeping buffers at its byte cap', () => {
    const pool = new BufferPool(2 * N * 4);
    const storage = new Map<tf.DataId, { values: unknown }>();
    let id = 0;
    const backend: PooledStorage = {
      data: { get: (k: tf.DataId) => storage.get(k), has: (k: tf.DataId) => storage.has(k) },
      write(values: unknown, _shape: number[], _dtype: tf.DataType) { const k = { id: id++ }; storage.set(k, { values }); return k; },
      readSync: (k: tf.DataId) => storage.get(k)!.values,
      read: async (k: tf.DataId) => storage.get(k)!.values,
      disposeData(k: tf.DataId) { storage.delete(k); return true; },
    };
    pool.attach(backend);
    const ids = [0, 1, 2].map(() => backend.write(pool.take(N), [N], 'float32'));
    ids.forEach((k) => backend.disposeData(k));
    expect(pool.stats.recycled).to.equal(2);
    expect(pool.stats.dropped).to.equal(1);
    expect(pool.bytes).to.equal(2 * N * 4);
    pool.take(N);
    expect(pool.bytes).to.equal(N * 4);
    // A new size when full evicts the least recently used other size instead of being dropped.
    const big = 2 * N;
    const k2 = backend.write(pool.take(big), [big], 'float32');
    backend.disposeData(k2);
    expect(pool.bytes).to.equal(big * 4); // the N-float buffer made room
    const reused = pool.stats.reused;
    pool.take(big);
    expect(pool.stats.reused).to.equal(reused + 1);
  });
});
