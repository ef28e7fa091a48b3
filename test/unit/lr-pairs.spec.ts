import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { sampleKey, type PairSource, type SampleKey } from '../../core/interfaces/index.js';
import { lrPairs, lrPairsOptions } from '../../data-sources/views/lr-pairs.js';
import { testContext, tmpDir } from '../helpers/fixtures.js';

const S = 112;

/** Two 112 px images: a constant grey, and a horizontal ramp 10 + 2·x (x the column). */
function fixedPairs(): PairSource {
  return {
    name: 'fixed', protocol: 'two images',
    async init() {
      return { pairs: [{ a: sampleKey('grey'), b: sampleKey('ramp'), same: false }], images: [sampleKey('grey'), sampleKey('ramp')], listHash: 'abc',
        groups: { attribute: 'none', mode: 'benchmark' as const } } as unknown as Awaited<ReturnType<PairSource['init']>>;
    },
    async load(keys: readonly SampleKey[]) {
      return tf.tidy(() => tf.stack(keys.map((k) => k === 'grey'
        ? tf.fill([S, S, 3], 97)
        : tf.tile(tf.reshape(tf.add(tf.mul(tf.range(0, S, 1, 'float32'), 2), 10), [1, S, 1]), [S, 1, 3])))) as tf.Tensor4D;
    },
    dispose() {},
  };
}

describe('lr-pairs (low-resolution evaluation pairs, strategy-specs §4.5 B1)', () => {
  const dir = tmpDir('lr-pairs');
  const make = async (size: number) => {
    const ctx = testContext(dir);
    const inner = fixedPairs();
    return lrPairs.create(lrPairsOptions.parse({ source: { kind: 'fixed' }, size }), { ...ctx, build: async () => inner } as typeof ctx) as Promise<PairSource>;
  };

  it('degrades both images to r×r: a constant stays constant, a ramp stays the ramp sampled at the r×r pixel centres', async () => {
    const p = await make(16);
    const x = await p.load([sampleKey('grey'), sampleKey('ramp')]);
    expect(x.shape).to.deep.equal([2, 16, 16, 3]);
    const v = x.arraySync() as number[][][][];
    for (const row of v[0]!) for (const px of row) for (const c of px) expect(c).to.be.closeTo(97, 1e-3);
    // Bilinear with half-pixel centres: output column j reads input x = (j + 0.5)·112/16 − 0.5. Away from the borders
    // (where the blur, σ = 0.5·112/16 = 3.5, meets the edge) a linear ramp is unchanged by the blur.
    for (let j = 3; j <= 12; j++) {
      const want = 10 + 2 * ((j + 0.5) * (S / 16) - 0.5);
      for (let i = 0; i < 16; i++) expect(v[1]![i]![j]![0], `row ${i} column ${j}`).to.be.closeTo(want, 1e-2);
    }
    x.dispose();
    const n = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) (await p.load([sampleKey('ramp')])).dispose();
    expect(tf.memory().numTensors, 'loads leave nothing behind').to.equal(n);
  });

  it('names the degradation in its protocol and keeps evaluation caches apart per r', async () => {
    const [a, b] = [await make(16), await make(32)];
    const [ia, ib] = [await a.init(), await b.init()];
    expect(a.protocol).to.contain('degraded to 16×16');
    expect(ia.listHash).to.not.equal('abc');
    expect(ia.listHash).to.not.equal(ib.listHash);
    expect(ia.pairs.length).to.equal(1);
    expect(ia.groups?.attribute).to.equal('none');
  });

  it('refuses r below 8 px', () => {
    expect(() => lrPairsOptions.parse({ source: { kind: 'fixed' }, size: 6 })).to.throw(/below 8 px/);
  });
});
