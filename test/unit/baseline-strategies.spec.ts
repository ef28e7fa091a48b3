import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import type { Contribution } from '../../core/di/contribution.js';
import { sampleKey, type Batch, type DataSource, type LossTerms, type StepContext, type Strategy, type Teacher } from '../../core/interfaces/index.js';
import { LayersStudent, buildConvStudent } from '../../core/models/conv-student.js';
import { Rng } from '../../core/util/rng.js';
import { cckd } from '../../strategies/cckd/cckd.js';
import { cckdLoss } from '../../strategies/cckd/loss.js';
import { darkRank } from '../../strategies/darkrank/darkrank.js';
import { darkRankLoss } from '../../strategies/darkrank/loss.js';
import { rkdLoss } from '../../strategies/rkd/loss.js';
import { rkd } from '../../strategies/rkd/rkd.js';
import { spLoss } from '../../strategies/sp/loss.js';
import { sp } from '../../strategies/sp/sp.js';
import { testContext, tmpDir } from '../helpers/fixtures.js';
import { stepContext } from '../helpers/step-context.js';

// The strategies wire the (numpy-checked) losses of strategies/<key>/loss.ts into one update
// per step: these tests check the wiring (terms, weights, student input, disposal) on a real
// student, and that the tensor count stays flat over real Adam steps.

const B = 6, D = 8;
const images = () => tf.tensor4d(Float32Array.from({ length: B * 16 * 16 * 3 }, (_, i) => ((i * 7919) % 1009) % 256), [B, 16, 16, 3]);
const teacherEmb = () => tf.tensor2d(Float32Array.from({ length: B * D }, (_, i) => Math.sin(i * 1.3) + 0.1 * (i % 5)), [B, D]);

function fixedData(): DataSource {
  return {
    async init() { return { name: 'fixed', images: B, skipped: [], listHash: 'x' }; },
    async next(): Promise<Batch> { return { images: images(), keys: Array.from({ length: B }, (_, i) => sampleKey(`k${i}`)), cacheable: false }; },
    state: () => null, restore() {}, dispose() {},
  };
}

function context(strategy: Strategy, student: LayersStudent, apply: boolean): { ctx: StepContext; opt: tf.Optimizer } {
  const { ctx, opt } = stepContext({ strategy, student, teacher: {} as Teacher, data: fixedData(), batchSize: B, apply, teacherEmbeddings: async () => teacherEmb() });
  return { ctx, opt };
}

const cases: { c: Contribution<'strategy'>; options: Record<string, unknown>; expected: (s: tf.Tensor2D, t: tf.Tensor2D) => Record<string, number> }[] = [
  { c: rkd as Contribution<'strategy'>, options: { weight: 1, headWeight: 1, distanceWeight: 25, angleWeight: 50 },
    expected: (s, t) => { const r = rkdLoss(s, t); const out = { rkd_distance: 25 * r.distance.dataSync()[0]!, rkd_angle: 50 * r.angle.dataSync()[0]! }; tf.dispose([r.loss, r.distance, r.angle]); return out; } },
  { c: sp as Contribution<'strategy'>, options: { weight: 2, headWeight: 1 }, expected: (s, t) => ({ sp: 2 * spLoss(s, t).dataSync()[0]! }) },
  { c: darkRank as Contribution<'strategy'>, options: { weight: 1, headWeight: 1, alpha: 3, beta: 3, listLength: 3 }, expected: (s, t) => ({ darkrank: darkRankLoss(s, t).dataSync()[0]! }) },
  { c: cckd as Contribution<'strategy'>, options: { weight: 0.5, headWeight: 1, gamma: 0.4, terms: 2 }, expected: (s, t) => ({ cckd: 0.5 * cckdLoss(s, t).dataSync()[0]! }) },
];

describe('embedding-relation baselines as strategies (rkd, sp, darkrank, cckd)', () => {
  const dir = tmpDir('baselines');
  for (const k of cases) {
    it(`${k.c.kind}: logs the weighted loss of the batch and keeps the tensor count flat over Adam steps`, async () => {
      const student = new LayersStudent('s', buildConvStudent({ inputSize: 16, widths: [8, 16], embeddingDim: D }, 3), { inputSize: [16, 16], colour: 'rgb', normalise: 'symmetric', crop: '' });
      const strategy = await k.c.create(k.options as never, testContext(dir));
      await strategy.init({ student, teacher: {} as Teacher, rng: new Rng(2), seed: 5 });
      // Expected values from the loss functions on the same student output (training mode, no update yet).
      const x = images(), t = teacherEmb();
      const s = student.forward(x, true);
      const want = k.expected(s, t);
      tf.dispose([x, t, s]);
      const probe = context(strategy, student, false);
      const got = await strategy.step(probe.ctx);
      expect(Object.keys(got).sort()).to.deep.equal(Object.keys(want).sort());
      for (const [name, v] of Object.entries(want)) expect(got[name]).to.be.closeTo(v, 1e-5 * Math.max(1, Math.abs(v)));

      const { ctx, opt } = context(strategy, student, true);
      const counts: number[] = [];
      const first = (await strategy.step(ctx));
      let last = first;
      for (let i = 0; i < 6; i++) { last = await strategy.step(ctx); counts.push(tf.memory().numTensors); }
      expect(new Set(counts.slice(1)).size, `tensor counts ${counts.join(',')}`).to.equal(1);
      const total = (r: Readonly<Record<string, number>>) => Object.values(r).reduce((a, b) => a + b, 0);
      expect(total(last)).to.be.below(total(first)); // the same batch: Adam lowers the loss
      opt.dispose(); strategy.dispose(); student.dispose();
    });
  }

  it('a head without labelled data is refused at init', async () => {
    const student = new LayersStudent('s', buildConvStudent({ inputSize: 16, widths: [8], embeddingDim: D }, 3), { inputSize: [16, 16], colour: 'rgb', normalise: 'symmetric', crop: '' });
    const fakeHead = Promise.resolve({ init() {}, dispose() {} } as never);
    const Sp = (await sp.create({ weight: 1, headWeight: 1 } as never, testContext(dir))).constructor as new (o: unknown, h?: Promise<never>) => Strategy;
    const strategy = new Sp({ weight: 1, headWeight: 1 }, fakeHead);
    let err: Error | undefined;
    await strategy.init({ student, teacher: {} as Teacher, rng: new Rng(2), seed: 5 }).catch((e: Error) => { err = e; });
    expect(err?.message).to.contain('needs identity labels');
    student.dispose();
  });
});
