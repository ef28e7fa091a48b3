import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { z } from 'zod';
import { contribution } from '../../core/di/contribution.js';
import { gaussianKernel } from '../../core/images/gaussian-blur.js';
import { disposeBatch, sampleKey, type Batch, type DataSource } from '../../core/interfaces/data-source.js';
import type { StepContext } from '../../core/interfaces/strategy.js';
import { Rng } from '../../core/util/rng.js';
import { featureKd } from '../../strategies/feature-kd/feature-kd.js';
import { renderViews, type DegradeOptions } from '../../data-sources/views/degrade.js';
import { views, viewsOptions } from '../../data-sources/views/views.js';
import { testContextWith, tmpDir } from '../helpers/fixtures.js';

// numpy references: test/fixtures/views_degrade_reference.py.
const KERNEL_1_5 = [0.0010283801, 0.0075987581, 0.036000772, 0.10936069, 0.21300554, 0.26601172, 0.21300554, 0.10936069, 0.036000772, 0.0075987581, 0.0010283801];
const KERNEL_3_MAX12 = [0.035482935, 0.058501469, 0.086309593, 0.1139453, 0.13461047, 0.14230046, 0.13461047, 0.1139453, 0.086309593, 0.058501469, 0.035482935];
const R4 = [133.25569, 113.69647, 96.873381, 107.81793, 137.62553, 164.697, 120.87272, 116.7084, 114.4669, 122.15822, 135.91809, 147.75512, 111.34218, 121.29043, 132.41594, 137.12502, 136.17385, 134.04541, 122.75192, 127.57085, 133.83803, 139.63103, 144.02668, 146.97409, 137.79033, 133.46183, 131.06483, 138.79085, 152.72185, 164.72135, 149.97632, 137.78271, 127.93611, 137.32417, 159.45381, 179.23643];
const R8_FLIPPED = [167.63563, 139.69231, 98.063527, 86.396495, 112.16435, 136.08657, 170.14377, 143.8821, 104.87163, 93.620926, 117.05587, 138.84948, 106.55315, 126.27597, 158.86343, 158.99707, 118.63868, 82.22554, 128.74497, 137.76661, 153.69231, 151.17667, 125.66381, 102.79613, 196.33651, 164.64431, 117.17849, 104.58335, 135.55196, 164.2195, 172.57482, 159.926, 142.11076, 134.23018, 138.7803, 143.34289];

const S = 12;
/** Channel c = base + 10c, base(y, x) = 100 + 80 sin(0.9y) cos(0.6x) + 3(x + y) (the fixture's image). */
function testImage(): Float32Array {
  const out = new Float32Array(S * S * 3);
  for (let y = 0; y < S; y++) for (let x = 0; x < S; x++) for (let c = 0; c < 3; c++) {
    out[(y * S + x) * 3 + c] = 100 + 80 * Math.sin(0.9 * y) * Math.cos(0.6 * x) + 3 * (x + y) + 10 * c;
  }
  return out;
}

/** Image i of the fixed source: 0.8·testImage + 2i, inside 16..226 so no clamp bites. */
const fixedImage = (i: number) => testImage().map((v) => 0.8 * v + 2 * i);

/** Six fixed 12 px images in order, labelled. */
class FixedImages implements DataSource {
  private pos = 0;
  async init() { return { name: 'fixed', images: 6, identities: 6, skipped: [], listHash: 'fixed-v1' }; }
  async next(n: number): Promise<Batch> {
    const idx = Array.from({ length: n }, () => this.pos++ % 6);
    const buf = new Float32Array(n * S * S * 3);
    idx.forEach((i, r) => buf.set(fixedImage(i), r * S * S * 3));
    return { images: tf.tensor4d(buf, [n, S, S, 3]), keys: idx.map((i) => sampleKey(`fixed:${i}`)), labels: Int32Array.from(idx), cacheable: true };
  }
  state() { return this.pos; }
  restore(s: unknown) { this.pos = s as number; }
  dispose() {}
}
const fixed = contribution({ slot: 'data', kind: 'test-fixed-images', summary: 'test only', options: z.object({}), async create() { return new FixedImages(); } });

/** The same images, with the even ones marked as flipped by this source (as recordio names its flips). */
class FlippingImages extends FixedImages {
  override async next(n: number): Promise<Batch> {
    const b = await super.next(n);
    const unflipped = b.keys.map((k) => (Number(k.split(':')[1]) % 2 === 0 ? sampleKey(`${k}-original`) : null));
    return { ...b, unflipped };
  }
}
const flipping = contribution({ slot: 'data', kind: 'test-flipping-images', summary: 'test only', options: z.object({}), async create() { return new FlippingImages(); } });

const make = async (o: Record<string, unknown>, seed: number) => {
  const s = await views.create(viewsOptions.parse({ source: { kind: 'test-fixed-images' }, ...o }), testContextWith(tmpDir('views'), seed, fixed));
  await s.init();
  return s;
};

describe('views data source (per-model views, low-resolution student view)', () => {
  it('Gaussian kernel: 2⌈3σ⌉+1 taps, as numpy; clamped to the image size', () => {
    const k = gaussianKernel(1.5);
    expect(k).to.have.length(11);
    Array.from(k).forEach((v, i) => expect(v).to.be.closeTo(KERNEL_1_5[i]!, 1e-7));
    const c = gaussianKernel(3, 12); // 19 taps wanted, 11 allowed (odd ≤ 12)
    expect(c).to.have.length(11);
    Array.from(c).forEach((v, i) => expect(v).to.be.closeTo(KERNEL_3_MAX12[i]!, 1e-7));
    expect(gaussianKernel(0.5 * 112 / 16)).to.have.length(23); // σ_b = 3.5 at r = 16: 2·⌈10.5⌉ + 1
  });

  it('degrade pipeline (blur σ = 0.5·S/r, resize r×r, resize to the student size; flip first) matches numpy', async () => {
    const img = tf.tensor4d([...testImage(), ...testImage()], [2, S, S, 3]);
    const o: DegradeOptions = { lrSizes: [4, 8], studentSize: 6, noiseStd: 0, pFlip: 0.5 };
    const { teacher, student } = await renderViews(img, [{ r: 4, flip: false }, { r: 8, flip: true }], o);
    expect(student.shape).to.deep.equal([2, 6, 6, 3]);
    const got = student.arraySync();
    [R4, R8_FLIPPED].forEach((ref, i) => {
      for (let p = 0; p < 36; p++) {
        const [y, x] = [Math.floor(p / 6), p % 6];
        for (let c = 0; c < 3; c++) expect(got[i]![y]![x]![c]).to.be.closeTo(ref[p]! + 10 * c, 2e-3);
      }
    });
    // The teacher keeps full resolution; the flipped sample's teacher view is mirrored too.
    const t = teacher.arraySync();
    expect(t[0]![3]![2]![1]).to.be.closeTo(testImage()[(3 * S + 2) * 3 + 1]!, 1e-4);
    expect(t[1]![3]![2]![1]).to.be.closeTo(testImage()[(3 * S + (S - 1 - 2)) * 3 + 1]!, 1e-4);
    tf.dispose([img, teacher, student]);
  });

  it('a source: same seed, same views; flipped samples get their own key and a mirrored teacher image', async () => {
    const [a, b, c] = [await make({}, 3), await make({}, 3), await make({}, 4)];
    const [x, y, w] = [await a.next(6), await b.next(6), await c.next(6)];
    expect(x.images.shape).to.deep.equal([6, S, S, 3]);
    expect(x.views!.student!.shape).to.deep.equal([6, 32, 32, 3]);
    expect(y.keys).to.deep.equal(x.keys);
    expect(Array.from(y.views!.student!.dataSync())).to.deep.equal(Array.from(x.views!.student!.dataSync()));
    expect(Array.from(w.views!.student!.dataSync())).to.not.deep.equal(Array.from(x.views!.student!.dataSync()));
    expect(Array.from(x.labels!)).to.deep.equal([0, 1, 2, 3, 4, 5]);
    const t = x.images.arraySync();
    x.keys.forEach((k, i) => {
      const flipped = k.endsWith('|flip');
      expect(k.replace('|flip', '')).to.equal(`fixed:${i}`);
      expect(x.unflipped?.[i] ?? null).to.equal(flipped ? `fixed:${i}` : null);
      const col = flipped ? S - 1 : 0;
      expect(t[i]![5]![col]![0]).to.be.closeTo(fixedImage(i)[(5 * S + 0) * 3]!, 1e-4);
    });
    [x, y, w].forEach(disposeBatch);
  });

  it('names the unflipped original of every mirrored sample, its own flips composed with the inner source\'s', async () => {
    for (const pFlip of [0, 1]) {
      const v = await views.create(viewsOptions.parse({ source: { kind: 'test-flipping-images' }, lrSizes: [8], studentSize: 8, pFlip }), testContextWith(tmpDir('views'), 3, flipping));
      await v.init();
      const b = await v.next(6);
      b.keys.forEach((k, i) => {
        const innerFlipped = i % 2 === 0;
        // pFlip 0: the inner source's flips pass through; pFlip 1: a second flip makes an inner-flipped image upright.
        const want = pFlip === 0 ? (innerFlipped ? `fixed:${i}-original` : null) : (innerFlipped ? null : `fixed:${i}`);
        expect(b.unflipped?.[i] ?? null, k).to.equal(want);
      });
      disposeBatch(b);
      v.dispose();
    }
  });

  it('draws r uniformly from lrSizes and flips with probability pFlip', async () => {
    // With S = 12, r = 12 is no reduction (no blur, identity resizes at studentSize 12): the
    // student view equals the teacher image exactly; r = 8 blurs. So the share of exact views is the share of r = 12.
    const s = await make({ lrSizes: [8, 12], studentSize: 12, pFlip: 0.25 }, 1);
    let flips = 0, exact = 0;
    for (let i = 0; i < 40; i++) {
      const b = await s.next(6);
      flips += b.keys.filter((k) => k.endsWith('|flip')).length;
      const [t, v] = [b.images.arraySync(), b.views!.student!.arraySync()];
      exact += t.filter((img, j) => JSON.stringify(img) === JSON.stringify(v[j])).length;
      disposeBatch(b);
    }
    // 240 draws: flips ~ Bin(240, 0.25) (mean 60, sd 6.7); r = 12 ~ Bin(240, 0.5) (mean 120, sd 7.7).
    expect(flips).to.be.within(40, 80);
    expect(exact).to.be.within(95, 145);
  });

  it('noise and JPEG: seeded (same seed, same bytes) and a moderate change of the student view', async () => {
    const plain = await make({ lrSizes: [8], studentSize: 8, pFlip: 0 }, 2);
    const noisy = await make({ lrSizes: [8], studentSize: 8, pFlip: 0, noiseStd: 8, jpegQuality: [30, 60] }, 2);
    const again = await make({ lrSizes: [8], studentSize: 8, pFlip: 0, noiseStd: 8, jpegQuality: [30, 60] }, 2);
    const [p, n, m] = [await plain.next(3), await noisy.next(3), await again.next(3)];
    const [pv, nv] = [Array.from(p.views!.student!.dataSync()), Array.from(n.views!.student!.dataSync())];
    expect(Array.from(m.views!.student!.dataSync())).to.deep.equal(nv);
    const mad = pv.reduce((s, v, i) => s + Math.abs(v - nv[i]!), 0) / pv.length;
    expect(mad).to.be.within(1, 30);
    // r = studentSize = 8: the last resize is the identity, so the JPEG decode's integers show.
    expect(nv.every((v) => Number.isInteger(v))).to.equal(true);
    expect(pv.every((v) => Number.isInteger(v))).to.equal(false);
    [p, n, m].forEach(disposeBatch);
  });

  it('state()/restore() continues the same stream', async () => {
    const a = await make({ noiseStd: 4 }, 5);
    disposeBatch(await a.next(4));
    const st = JSON.parse(JSON.stringify(a.state()));
    const b = await make({ noiseStd: 4 }, 99);
    b.restore(st);
    for (let i = 0; i < 3; i++) {
      const [x, y] = [await a.next(4), await b.next(4)];
      expect(y.keys).to.deep.equal(x.keys);
      expect(Array.from(y.views!.student!.dataSync())).to.deep.equal(Array.from(x.views!.student!.dataSync()));
      [x, y].forEach(disposeBatch);
    }
  });

  it('refuses r < 8 at validation, naming the rule', () => {
    const r = viewsOptions.safeParse({ source: { kind: 'x' }, lrSizes: [16, 4] });
    expect(r.success).to.equal(false);
    expect(JSON.stringify(r.error!.issues)).to.contain('below 8 px is refused');
  });

  it('feature-kd feeds the student its view, and nothing leaks across steps', async () => {
    const data = await make({ studentSize: 16 }, 0);
    const seen: number[][] = [];
    const student = {
      name: 'probe', embeddingDim: 4, paramCount: 0, contract: { inputSize: [16, 16], colour: 'rgb', normalise: 'unit' },
      forward: (x: tf.Tensor4D) => { seen.push(x.shape); return tf.tidy(() => tf.add(tf.mean(x.reshape([x.shape[0], -1, 4]), 1), w)) as tf.Tensor2D; },
    };
    const w = tf.variable(tf.zeros([1, 4]));
    const teacher = { name: 't', embeddingDim: 4 };
    const strat = await featureKd.create({ loss: 'mse-normalised', weight: 1, projection: 'never' }, undefined as never);
    await strat.init({ student: student as never, teacher: teacher as never, rng: new Rng(0), seed: 0 });
    const ctx = {
      step: 0, batchSize: 4, student, teacher, data, rng: new Rng(1),
      teacherEmbeddings: async (b: Batch) => tf.tidy(() => tf.mean(b.images.reshape([b.images.shape[0], -1, 4]), 1) as tf.Tensor2D),
      update: async (fn: () => Record<string, tf.Scalar>) => { const t = tf.tidy(() => Object.values(fn())[0]!.dataSync()[0]!); return { loss: t }; },
    } as unknown as StepContext;
    await strat.step(ctx);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) await strat.step(ctx);
    expect(tf.memory().numTensors).to.equal(before);
    expect(seen.every((s) => s.join() === '4,16,16,3'), 'the student saw the 16 px view, not the 12 px image').to.equal(true);
    w.dispose();
    strat.dispose();
  });
});
