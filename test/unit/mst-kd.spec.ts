import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { sampleKey, type Batch, type DataSource, type Student, type Teacher } from '../../core/interfaces/index.js';
import { LayersStudent, buildConvStudent } from '../../core/models/conv-student.js';
import { Rng } from '../../core/util/rng.js';
import { MultiTeacher } from '../../strategies/mst-kd/multi-teacher.js';
import { mstAdaptor, mstAdaptorOptions, mstKd, mstKdOptions } from '../../strategies/mst-kd/mst-kd.js';
import { mstKdLoss } from '../../strategies/mst-kd/loss.js';
import { testContext, tmpDir } from '../helpers/fixtures.js';
import { fixedTeacher, stepContext } from '../helpers/step-context.js';

// Reference numbers: python3 test/fixtures/strategy-refs/mst_kd.py (numpy), same closed-form inputs.
const REF = {
  sl: [-0.7243465538301626, -0.5412931217398756, -0.3746930313738231, -0.2028835583034415, 0.02769874223673168, -0.7235898292008067, -0.09072800886284581, -0.09497621266904897, -0.42906308036737506, -0.5244717147546032, 0.5792089568509536, 0.6309368633064654, 0.4052956352466383, 0.021571789266040278, -0.318913412672647],
  dul: [0.49372889906602935, 0.5032410718459124, -0.03957763523860435, -0.5424367585900509, -0.45516609227145044, 0.49460779327496945, 0.5074815859001135, -0.03445761809837259, -0.5388122794506492, -0.4542241416659325, 0.4693529858912475, 0.7321620408417103, 0.33813954137732033, -0.19378365794036134, -0.3029126360155031],
  dulRawInputs: [0.4957894691922957, 0.49924937081162063, -0.04098926724656424, -0.5410612115069681, -0.45881969591052246, 0.4967611783289566, 0.5058219518502478, -0.033525551756995474, -0.5361072098799696, -0.4569875070784051, 0.5363154127572891, 0.5665108821308434, 0.09354239748636668, -0.40741211485087214, -0.46550659180247345],
  eafCe: 7.345324884296871,
};

const B = 3, H = 4, O = 5, C = 3;
const grid = (r: number, c: number, f: (i: number, j: number) => number) => Array.from({ length: r }, (_, i) => Array.from({ length: c }, (_, j) => f(i, j)));
const p1 = grid(B, 3, (i, j) => Math.sin(0.7 * i + 0.3 * j + 0.1));
const p2 = grid(B, 4, (i, j) => 2 * Math.cos(0.4 * i - 0.6 * j + 0.2));
const mat = (r: number, c: number, a: number, b: number) => grid(r, c, (i, j) => 0.3 * Math.cos(a * i - b * j + 0.5));
const vec = (k: number, a: number) => Array.from({ length: k }, (_, i) => 0.1 * Math.sin(a * i + 1));

function labelled(labels: number[], size = 16): DataSource {
  return {
    async init() { return { name: 'fixed', images: labels.length, identities: C, skipped: [], listHash: 'x' }; },
    async next(n: number): Promise<Batch> {
      return { images: tf.fill([n, size, size, 3], 100) as tf.Tensor4D, keys: Array.from({ length: n }, (_, i) => sampleKey(`k${i}`)), labels: Int32Array.from({ length: n }, (_, i) => labels[i % labels.length]!), cacheable: false };
    },
    state: () => null, restore() {}, dispose() {},
  };
}

const eaf = { kind: 'elastic-arcface', s: 8, m: 0.5, sigma: 0, initStd: 0.01 };
/** A one-layer conv student on 16 px inputs. */
const tinyStudent = (dim: number) =>
  new LayersStudent('s', buildConvStudent({ inputSize: 16, widths: [8], embeddingDim: dim }, 3), { inputSize: [16, 16], colour: 'rgb', normalise: 'symmetric', crop: '' });
const close = (got: ArrayLike<number>, want: number[], tol = 1e-5) => {
  expect(got.length).to.equal(want.length);
  Array.from(got).forEach((g, i) => expect(g, `element ${i}`).to.be.closeTo(want[i]!, tol));
};

async function adaptorStrategy(dir: string, o: Record<string, unknown>, teacher: Teacher) {
  const s = await mstAdaptor.create(mstAdaptorOptions.parse({ hidden: H, outputDim: O, head: eaf, ...o }), testContext(dir));
  await s.init({ student: {} as Student, teacher, rng: new Rng(1), seed: 3, classes: C });
  return s;
}

describe('mst-kd', () => {
  const dir = tmpDir('mst-kd');
  const multi = () => new MultiTeacher([fixedTeacher('t1', p1), fixedTeacher('t2', p2)]);
  const images = () => tf.zeros([B, 16, 16, 3]) as tf.Tensor4D;

  it('multi-teacher concatenates the L2-normalised embeddings in the given order', async () => {
    const m = multi();
    expect(m.embeddingDim).to.equal(7);
    const x = images();
    const u = await m.embed(x), raw = await m.embedUnnormalised(x);
    const n = (r: number[]) => { const l = Math.hypot(...r); return r.map((v) => v / l); };
    close(u.dataSync(), p1.flatMap((r, i) => [...n(r), ...n(p2[i]!)]));
    close(raw.dataSync(), p1.flatMap((r, i) => [...r, ...p2[i]!]));
    tf.dispose([x, u, raw]);
  });

  it('sl adaptor: the hand-off is n(A(u)) and the training loss is ElasticArcFace CE on it (numpy)', async () => {
    const m = multi();
    const s = await adaptorStrategy(dir, { adaptor: 'sl' }, m);
    const [w, b, head] = s.variables();
    expect(s.variables()).to.have.length(3);
    w!.assign(tf.tensor2d(mat(7, O, 0.9, 0.4))); b!.assign(tf.tensor1d(vec(O, 0.8))); head!.assign(tf.tensor2d(mat(O, C, 0.5, 1.7)));
    const handed = s.stageTeacher!(m);
    expect(handed.embeddingDim).to.equal(O);
    const x = images();
    const e = await handed.embed(x);
    close(e.dataSync(), REF.sl);
    tf.dispose([x, e]);
    const { ctx, updates } = stepContext({ strategy: s, student: {} as Student, teacher: m, data: labelled([0, 2, 1]), batchSize: B, apply: false });
    const got = await s.step(ctx);
    expect(Object.keys(got)).to.deep.equal(['identity']);
    expect(got.identity).to.be.closeTo(REF.eafCe, 1e-4);
    expect(updates).to.have.length(1);
    s.dispose();
  });

  for (const kind of ['dul', 'dldpo'] as const) {
    it(`${kind} adaptor hand-off (dropout off) equals numpy; adaptorEvalNormalizeInputs false feeds the raw outputs`, async () => {
      const m = multi();
      for (const [norm, want] of [[true, REF.dul], [false, REF.dulRawInputs]] as const) {
        const s = await adaptorStrategy(dir, { adaptor: kind, adaptorEvalNormalizeInputs: norm }, m);
        const [w1, b1, w2, b2] = s.variables();
        w1!.assign(tf.tensor2d(mat(7, H, 0.9, 0.4))); b1!.assign(tf.tensor1d(vec(H, 0.8)));
        w2!.assign(tf.tensor2d(mat(H, O, 1.3, 0.7))); b2!.assign(tf.tensor1d(vec(O, 1.1)));
        const x = images();
        const e = await s.stageTeacher!(m).embed(x);
        close(e.dataSync(), want);
        tf.dispose([x, e]);
        s.dispose();
      }
    });
  }

  it('adaptorEvalNormalizeInputs false needs a multi-teacher', async () => {
    const single = fixedTeacher('t1', p1);
    const s = await adaptorStrategy(dir, { adaptor: 'sl', adaptorEvalNormalizeInputs: false }, single);
    expect(() => s.stageTeacher!(single)).to.throw('needs a multi-teacher');
    s.dispose();
  });

  it('dldpo: dropout acts in training only (training loss differs from the dul loss with the same weights)', async () => {
    const m = multi();
    const losses: number[] = [];
    for (const kind of ['dul', 'dldpo'] as const) {
      const s = await adaptorStrategy(dir, { adaptor: kind, dropout: 0.5 }, m);
      const v = s.variables();
      v[0]!.assign(tf.tensor2d(mat(7, H, 0.9, 0.4))); v[1]!.assign(tf.tensor1d(vec(H, 0.8)));
      v[2]!.assign(tf.tensor2d(mat(H, O, 1.3, 0.7))); v[3]!.assign(tf.tensor1d(vec(O, 1.1))); v[4]!.assign(tf.tensor2d(mat(O, C, 0.5, 1.7)));
      const { ctx } = stepContext({ strategy: s, student: {} as Student, teacher: m, data: labelled([0, 2, 1]), batchSize: B, apply: false });
      losses.push((await s.step(ctx)).identity!);
      s.dispose();
    }
    expect(Math.abs(losses[0]! - losses[1]!)).to.be.above(1e-3);
  });

  it('the adaptor stage trains only the adaptor and head, leaves the student alone, and keeps the tensor count flat', async () => {
    const student = tinyStudent(5);
    const before = student.model.getWeights().map((w) => Array.from(w.dataSync()));
    const m = multi();
    const s = await adaptorStrategy(dir, { adaptor: 'dldpo', head: { ...eaf, s: 16, sigma: 0.0125 } }, m);
    const { ctx, opt } = stepContext({ strategy: s, student, teacher: m, data: labelled([0, 2, 1, 1, 0, 2]), batchSize: 6, apply: true, lr: 0.05 });
    const counts: number[] = [];
    const first = await s.step(ctx);
    let last = first;
    for (let i = 0; i < 8; i++) { last = await s.step(ctx); counts.push(tf.memory().numTensors); }
    expect(new Set(counts.slice(1)).size, `tensor counts ${counts.join(',')}`).to.equal(1);
    expect(last.identity).to.be.below(first.identity!);
    const after = student.model.getWeights().map((w) => Array.from(w.dataSync()));
    expect(after).to.deep.equal(before);
    opt.dispose(); s.dispose(); student.dispose();
  });

  it('hands on the adaptor of the epoch with the lowest summed loss (§2.3 step 5), and the selection survives a checkpoint', async () => {
    const student = tinyStudent(5);
    const make = async () => {
      const s = await mstAdaptor.create(mstAdaptorOptions.parse({ hidden: H, outputDim: O, head: { ...eaf, s: 16 } }), testContext(dir));
      await s.init({ student: {} as Student, teacher: multi(), rng: new Rng(1), seed: 3, classes: C, images: 6 }); // epoch = ⌈6/3⌉ = 2 steps
      return s;
    };
    const adaptorWeights = (s: Awaited<ReturnType<typeof make>>) => s.variables().slice(0, 2).map((v) => Array.from(v.dataSync())); // sl: W, b
    const s = await make();
    // Gradient ascent (negative learning rate): the loss rises, so the first epoch is the best and the last is not.
    const { ctx, opt } = stepContext({ strategy: s, student, teacher: multi(), data: labelled([0, 2, 1]), batchSize: 3, apply: true, lr: -0.05 });
    const losses: number[] = [], atEpochEnd: number[][][] = [];
    for (let i = 0; i < 7; i++) { // 3 full epochs and one step of a fourth, which does not count
      losses.push((await s.step(ctx)).identity!);
      if (i % 2 === 1) atEpochEnd.push(adaptorWeights(s));
    }
    const sums = [0, 1, 2].map((e) => losses[2 * e]! + losses[2 * e + 1]!);
    const best = sums.indexOf(Math.min(...sums));
    expect(best).to.equal(0);
    expect(sums[2]).to.be.above(sums[0]!);
    expect((s as unknown as { selectedEpoch?: number }).selectedEpoch).to.equal(best);
    const last = adaptorWeights(s);
    expect(last).to.not.deep.equal(atEpochEnd[best]);
    // Through a checkpoint: a fresh strategy with the last weights and the saved state hands on the same adaptor.
    const saved = JSON.parse(JSON.stringify(s.state()));
    const r = await make();
    r.variables().forEach((v, i) => v.assign(s.variables()[i]!));
    r.restore(saved);
    const x = images();
    const viaRestored = await r.stageTeacher!(multi()).embed(x);
    const viaOriginal = await s.stageTeacher!(multi()).embed(x);
    expect(adaptorWeights(s)).to.deep.equal(atEpochEnd[best]);
    expect(adaptorWeights(r)).to.deep.equal(atEpochEnd[best]);
    expect(Array.from(viaRestored.dataSync())).to.deep.equal(Array.from(viaOriginal.dataSync()));
    tf.dispose([x, viaRestored, viaOriginal]);
    opt.dispose(); s.dispose(); r.dispose(); student.dispose();
  });

  it('selectBy last hands on the last weights', async () => {
    const s = await mstAdaptor.create(mstAdaptorOptions.parse({ hidden: H, outputDim: O, head: { ...eaf, s: 16 }, selectBy: 'last' }), testContext(dir));
    await s.init({ student: {} as Student, teacher: multi(), rng: new Rng(1), seed: 3, classes: C, images: 6 });
    const student = tinyStudent(5);
    const { ctx, opt } = stepContext({ strategy: s, student, teacher: multi(), data: labelled([0, 2, 1]), batchSize: 3, apply: true, lr: -0.05 });
    for (let i = 0; i < 6; i++) await s.step(ctx);
    const last = s.variables().slice(0, 2).map((v) => Array.from(v.dataSync()));
    s.stageTeacher!(multi());
    expect(s.variables().slice(0, 2).map((v) => Array.from(v.dataSync()))).to.deep.equal(last);
    opt.dispose(); s.dispose(); student.dispose();
  });

  it('a sample the source flipped gets the unflipped image\'s target (reference); flipTargets true the flipped one\'s', async () => {
    const student = tinyStudent(4);
    // A teacher that sees left from right: the mean of each quarter of columns.
    const sided: Teacher = { ...fixedTeacher('sided', [[1, 0, 0, 0]]),
      async embed(x) { return tf.tidy(() => tf.concat([0, 4, 8, 12].map((c) => tf.mean(tf.slice(x, [0, 0, c, 0], [-1, -1, 4, -1]), [1, 2, 3], true)), 1).reshape([x.shape[0], 4]) as tf.Tensor2D); } };
    const ramp = tf.tidy(() => tf.tile(tf.reshape(tf.range(0, 16, 1, 'float32'), [1, 1, 16, 1]), [2, 16, 1, 3])) as tf.Tensor4D; // 2 images, brightness rises left → right
    const source: DataSource = {
      async init() { return { name: 'flips', images: 2, identities: C, skipped: [], listHash: 'f' }; },
      async next(): Promise<Batch> {
        // Sample 0 as stored, sample 1 flipped by the source (its key says so; unflipped names the original).
        const images = tf.tidy(() => tf.concat([tf.slice(ramp, [0, 0, 0, 0], [1, -1, -1, -1]), tf.image.flipLeftRight(tf.slice(ramp, [1, 0, 0, 0], [1, -1, -1, -1]))], 0)) as tf.Tensor4D;
        return { images, keys: [sampleKey('a'), sampleKey('b:flip')], unflipped: [null, sampleKey('b')], labels: Int32Array.from([0, 1]), cacheable: false };
      },
      state: () => null, restore() {}, dispose() {},
    };
    const lossWith = async (targetImages: tf.Tensor4D) => {
      const b = await source.next(2);
      const t = await sided.embed(targetImages), sOut = student.forward(b.images, true);
      const v = mstKdLoss(sOut, t).dataSync()[0]!;
      tf.dispose([t, sOut, b.images]);
      return v;
    };
    const asSeen = await source.next(2);
    const wantReference = await lossWith(ramp), wantFlipped = await lossWith(asSeen.images);
    expect(Math.abs(wantReference - wantFlipped)).to.be.above(1e-2 * wantReference); // the two choices differ here
    for (const [flipTargets, want] of [[undefined, wantReference], [true, wantFlipped]] as const) {
      const s = await mstKd.create(mstKdOptions.parse(flipTargets === undefined ? {} : { flipTargets }), testContext(dir));
      await s.init({ student, teacher: sided, rng: new Rng(1), seed: 2 });
      const probe = stepContext({ strategy: s, student, teacher: sided, data: source, batchSize: 2, apply: false });
      expect((await s.step(probe.ctx)).mst_kd, `flipTargets ${flipTargets}`).to.be.closeTo(want, 1e-4 * want);
      const n = tf.memory().numTensors;
      for (let i = 0; i < 3; i++) await s.step(probe.ctx);
      expect(tf.memory().numTensors, `tensor count, flipTargets ${flipTargets}`).to.equal(n);
      probe.opt.dispose(); s.dispose();
    }
    tf.dispose([ramp, asSeen.images]);
    student.dispose();
  });

  it('mst-kd logs λ·MSE(n(a), n(s)) (+ the EAF identity term), refuses a dimension mismatch, and keeps the tensor count flat', async () => {
    const student = tinyStudent(4);
    const targets = fixedTeacher('adaptor', p2);
    const mismatch = await mstKd.create(mstKdOptions.parse({}), testContext(dir));
    let err: Error | undefined;
    await mismatch.init({ student, teacher: fixedTeacher('t1', p1), rng: new Rng(1), seed: 2 }).catch((e: Error) => { err = e; });
    expect(err?.message).to.contain('must equal the teacher');
    const s = await mstKd.create(mstKdOptions.parse({ head: { ...eaf, sigma: 0.05 } }), testContext(dir));
    await s.init({ student, teacher: targets, rng: new Rng(1), seed: 2, classes: C });
    const x = tf.fill([B, 16, 16, 3], 100) as tf.Tensor4D, t = await targets.embed(x);
    const sOut = student.forward(x, true);
    const want = mstKdLoss(sOut, t).dataSync()[0]!;
    tf.dispose([x, t, sOut]);
    const probe = stepContext({ strategy: s, student, teacher: targets, data: labelled([0, 2, 1]), batchSize: B, apply: false });
    const got = await s.step(probe.ctx);
    expect(Object.keys(got).sort()).to.deep.equal(['identity', 'mst_kd']);
    expect(got.mst_kd).to.be.closeTo(want, 1e-3 * want);
    const { ctx, opt } = stepContext({ strategy: s, student, teacher: targets, data: labelled([0, 2, 1]), batchSize: B, apply: true });
    const counts: number[] = [];
    const first = await s.step(ctx);
    let last = first;
    for (let i = 0; i < 6; i++) { last = await s.step(ctx); counts.push(tf.memory().numTensors); }
    expect(new Set(counts.slice(1)).size, `tensor counts ${counts.join(',')}`).to.equal(1);
    expect(last.mst_kd).to.be.below(first.mst_kd!);
    opt.dispose(); s.dispose(); mismatch.dispose(); student.dispose();
  });
});
