import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { sampleKey, type Batch, type DataSource, type Student, type Teacher } from '../../core/interfaces/index.js';
import { LayersStudent, buildConvStudent } from '../../core/models/conv-student.js';
import { Rng } from '../../core/util/rng.js';
import { bridgeAdapt, bridgeAdaptOptions, bridgeDistil, bridgeDistilOptions } from '../../strategies/bridge/bridge.js';
import { testContext, tmpDir } from '../helpers/fixtures.js';
import { fixedTeacher, stepContext } from '../helpers/step-context.js';

// Reference numbers: python3 test/fixtures/strategy-refs/bridge.py (numpy), same closed-form inputs.
const REF = {
  stepAIdentity: 6.9825521879260055,
  stepASp: 0.2129368581203489,
  runningMean: [0.037055962985930224, 0.030603278539343276, 0.006779016339286755],
  runningVar: [0.9208902019859969, 0.9058266355966499, 0.9219804623980236],
  handoff: [-0.4274673641654395, 0.09095027744126562, 0.8994441058825214, 0.6830150293042966, 0.5626645827744904, 0.4657242070535515, 0.9410347619175276, 0.2830440024874333, -0.1853096584604158, 0.8773457211446272, -0.03251436850372614, -0.4787559936230749],
  stepBMimicMean: 27.097949302627427,
  stepBMimicSum: 5.419589860525486,
  stepBIdentity: 5.693166218643071,
};

const B = 4, DIN = 6, O = 3, C = 3;
const grid = (r: number, c: number, f: (i: number, j: number) => number) => Array.from({ length: r }, (_, i) => Array.from({ length: c }, (_, j) => f(i, j)));
const tRaw = grid(B, DIN, (a, b) => Math.sin(0.8 * a + 0.5 * b + 0.3) * (1 + 0.2 * b));
const W = grid(DIN, O, (a, b) => 0.4 * Math.cos(0.7 * a - 1.1 * b + 0.2));
const WA = grid(O, C, (a, b) => Math.cos(1.3 * a + 0.6 * b + 0.4));
const sRaw = grid(B, O, (a, b) => Math.cos(0.9 * a - 0.4 * b + 0.1) + 0.3);
const hT = grid(B, O, (a, b) => Math.sin(0.6 * a + 0.9 * b + 0.5));
const WS = grid(O, C, (a, b) => Math.sin(0.5 * a - 0.8 * b + 0.3));
const labels = [0, 2, 1, 2];
const cos8 = { kind: 'cosface', s: 8, m: 0.35, initStd: 0.01 };

/** Labelled HR images (16 px) with, unless `noView`, an 8 px student view. */
function views(o: { noView?: boolean; classes?: number } = {}): DataSource {
  return {
    async init() { return { name: 'views', images: 8, identities: o.classes ?? C, skipped: [], listHash: 'v' }; },
    async next(n: number): Promise<Batch> {
      const images = tf.tidy(() => tf.add(tf.mul(tf.randomUniform([n, 16, 16, 3], 0, 1, 'float32', 7), 200), 20)) as tf.Tensor4D;
      return {
        images, keys: Array.from({ length: n }, (_, i) => sampleKey(`v${i}`)), labels: Int32Array.from({ length: n }, (_, i) => labels[i % labels.length]! % (o.classes ?? C)), cacheable: true,
        ...(o.noView ? {} : { views: { student: tf.image.resizeBilinear(images, [8, 8]) as tf.Tensor4D } }),
      };
    },
    state: () => null, restore() {}, dispose() {},
  };
}

const close = (got: ArrayLike<number>, want: number[], tol = 1e-5) => {
  expect(got.length).to.equal(want.length);
  Array.from(got).forEach((g, i) => expect(g, `element ${i}`).to.be.closeTo(want[i]!, tol));
};

async function adapt(dir: string, teacher: Teacher) {
  const s = await bridgeAdapt.create(bridgeAdaptOptions.parse({ outputDim: O, head: cos8 }), testContext(dir));
  await s.init({ student: {} as Student, teacher, rng: new Rng(1), seed: 4, classes: C });
  return s;
}

describe('bridge', () => {
  const dir = tmpDir('bridge');

  it('step A: CosFace CE on h = n(BN(P(n(t)))) and λ_sp·‖G_h − G_t‖²/B², running BN estimates, hand-off n(P_eval(n(T(x)))) (numpy)', async () => {
    const teacher = fixedTeacher('hr', tRaw);
    const s = await adapt(dir, teacher);
    const [w, b, gamma, beta, wa] = s.variables();
    expect(s.variables()).to.have.length(5);
    w!.assign(tf.tensor2d(W)); b!.assign(tf.tensor1d([0.05, -0.1, 0.02]));
    gamma!.assign(tf.tensor1d([1.2, 0.8, 1.0])); beta!.assign(tf.tensor1d([0.1, -0.05, 0])); wa!.assign(tf.tensor2d(WA));
    const { ctx, updates } = stepContext({ strategy: s, student: {} as Student, teacher, data: views(), batchSize: B, apply: false });
    const got = await s.step(ctx);
    expect(updates).to.have.length(1);
    expect(got.identity).to.be.closeTo(REF.stepAIdentity, 1e-4);
    expect(got.sp).to.be.closeTo(REF.stepASp, 1e-5);
    const st = s.state() as { bn: { runningMean: number[]; runningVar: number[] } };
    close(st.bn.runningMean, REF.runningMean, 1e-6);
    close(st.bn.runningVar, REF.runningVar, 1e-6);
    const x = tf.zeros([B, 16, 16, 3]) as tf.Tensor4D;
    const handed = s.stageTeacher!(teacher);
    expect(handed.embeddingDim).to.equal(O);
    const e = await handed.embed(x);
    close(e.dataSync(), REF.handoff);
    e.dispose();
    // A strategy rebuilt after a resume (variables assigned, state restored) hands on the same teacher.
    const again = await adapt(dir, teacher);
    again.variables().forEach((v, i) => v.assign(s.variables()[i]!));
    again.restore(s.state());
    const e2 = await again.stageTeacher!(teacher).embed(x);
    close(e2.dataSync(), REF.handoff);
    expect(again.stageTeacher!(teacher).weightsHash).to.equal(handed.weightsHash);
    tf.dispose([x, e2]);
    s.dispose(); again.dispose();
  });

  for (const [mode, mimic] of [['meanL2', REF.stepBMimicMean], ['sumL2', REF.stepBMimicSum]] as const) {
    it(`step B (${mode}): mimic + CosFace identity on the student's low-resolution view (numpy)`, async () => {
      const seen: number[][] = [];
      const student: Student = {
        name: 'fixed', contract: { inputSize: [8, 8], colour: 'rgb', normalise: 'symmetric', crop: '' }, embeddingDim: O, paramCount: 0,
        forward(x: tf.Tensor4D) { seen.push(x.shape.slice()); return tf.tensor2d(sRaw); },
      } as unknown as Student;
      const teacher = fixedTeacher('bridge-head', hT);
      const s = await bridgeDistil.create(bridgeDistilOptions.parse({ stepBLoss: mode, head: cos8 }), testContext(dir));
      await s.init({ student, teacher, rng: new Rng(1), seed: 4, classes: C });
      s.variables()[0]!.assign(tf.tensor2d(WS));
      const { ctx } = stepContext({ strategy: s, student, teacher, data: views(), batchSize: B, apply: false });
      const got = await s.step(ctx);
      expect(seen).to.deep.equal([[B, 8, 8, 3]]);
      expect(got.mimic).to.be.closeTo(mimic, 1e-4);
      expect(got.identity).to.be.closeTo(REF.stepBIdentity, 1e-4);
      const bare = stepContext({ strategy: s, student, teacher, data: views({ noView: true }), batchSize: B, apply: false });
      let err: Error | undefined;
      await s.step(bare.ctx).catch((e: Error) => { err = e; });
      expect(err?.message).to.contain('batch.views.student');
      s.dispose();
    });
  }

  it('both steps keep the tensor count flat over Adam steps and lower their loss', async () => {
    const teacher = fixedTeacher('hr', grid(8, DIN, (a, b) => Math.sin(0.8 * a + 0.5 * b + 0.3) * (1 + 0.2 * b)));
    const a = await adapt(dir, teacher);
    const student = new LayersStudent('s', buildConvStudent({ inputSize: 8, widths: [8], embeddingDim: O }, 3), { inputSize: [8, 8], colour: 'rgb', normalise: 'symmetric', crop: '' });
    const handed = a.stageTeacher!(teacher);
    const d = await bridgeDistil.create(bridgeDistilOptions.parse({ head: { ...cos8, s: 16 } }), testContext(dir));
    await d.init({ student, teacher: handed, rng: new Rng(1), seed: 4, classes: C });
    for (const [strategy, t] of [[a, teacher], [d, handed]] as const) {
      const { ctx, opt } = stepContext({ strategy, student, teacher: t, data: views(), batchSize: 8, apply: true, lr: 0.02 });
      const total = (r: Readonly<Record<string, number>>) => Object.values(r).reduce((x, y) => x + y, 0);
      const counts: number[] = [];
      const first = total(await strategy.step(ctx));
      let last = first;
      for (let i = 0; i < 8; i++) { last = total(await strategy.step(ctx)); counts.push(tf.memory().numTensors); }
      expect(new Set(counts.slice(1)).size, `${strategy.name} tensor counts ${counts.join(',')}`).to.equal(1);
      expect(last, strategy.name).to.be.below(first);
      opt.dispose();
    }
    d.dispose(); a.dispose(); student.dispose();
  });
});
