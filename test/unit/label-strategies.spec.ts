import { writeFileSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import type { Contribution } from '../../core/di/contribution.js';
import { softmaxCrossEntropy } from '../../core/heads/margins.js';
import { sampleKey, type Batch, type DataSource, type Head, type LossTerms, type StepContext, type Strategy, type Teacher } from '../../core/interfaces/index.js';
import { LayersStudent, buildConvStudent } from '../../core/models/conv-student.js';
import { Rng } from '../../core/util/rng.js';
import type { JsonValue } from '../../core/util/json.js';
import { ekd } from '../../strategies/ekd/ekd.js';
import { EkdAnchors, ekdLoss } from '../../strategies/ekd/loss.js';
import { groupedKd } from '../../strategies/grouped-kd/grouped-kd.js';
import { gkdLoss } from '../../strategies/grouped-kd/loss.js';
import { logitKd } from '../../strategies/logit-kd/logit-kd.js';
import { logitKdLoss } from '../../strategies/logit-kd/loss.js';
import { marginOnly } from '../../strategies/margin-only/margin-only.js';
import { testContext, tmpDir } from '../helpers/fixtures.js';
import { stepContext } from '../helpers/step-context.js';

// Wiring of the label-based strategies: the logged terms must equal the (numpy-checked)
// loss functions of strategies/<key>/loss.ts and the (numpy-checked) heads on the same batch,
// with the weights, the CE-only-on-the-general-part rule, the GKD ramp and the teacher head.

const B = 8, D = 8, DT = 6, C = 3;
const LABELS = Int32Array.from([0, 1, 2, 0, 1, 1, 2, 2]); // positives in both halves
const DISTINCT = Int32Array.from([0, 1, 2, 3, 4, 5, 6, 7]); // no positive pair (C = 8 for it)
const images = () => tf.tensor4d(Float32Array.from({ length: B * 16 * 16 * 3 }, (_, i) => ((i * 7919) % 1009) % 256), [B, 16, 16, 3]);
const teacherEmb = () => tf.tensor2d(Float32Array.from({ length: B * DT }, (_, i) => Math.sin(i * 1.3) + 0.1 * (i % 5) + (Math.floor(i / DT) % C) * 0.8 * ((i % DT) === (Math.floor(i / DT) % C) ? 1 : 0)), [B, DT]);
const teacher = { embeddingDim: DT } as Teacher;

/** The same labelled batch on every call; counts the calls. */
function fixedData(labels: Int32Array): DataSource & { calls: number } {
  return {
    calls: 0,
    async init() { return { name: 'fixed', images: 20, skipped: [], listHash: 'x' }; },
    async next(): Promise<Batch> { this.calls++; return { images: images(), labels, keys: Array.from({ length: B }, (_, i) => sampleKey(`k${i}`)), cacheable: false }; },
    state: () => null, restore() {}, dispose() {},
  };
}

function student(): LayersStudent {
  return new LayersStudent('s', buildConvStudent({ inputSize: 16, widths: [8, 16], embeddingDim: D }, 3), { inputSize: [16, 16], colour: 'rgb', normalise: 'symmetric', crop: '' });
}

/** A StepContext like the engine's: one update on the student + strategy.variables(). */
type MutableContext = { -readonly [K in keyof StepContext]: StepContext[K] };
function context(strategy: Strategy, st: LayersStudent, data: DataSource, apply: boolean): { ctx: MutableContext; opt: tf.Optimizer } {
  const { ctx, opt } = stepContext({ strategy, student: st, teacher, data, batchSize: B, apply, teacherEmbeddings: async () => teacherEmb() });
  return { ctx: ctx as MutableContext, opt };
}

const dir = tmpDir('label-strategies');
const make = async (c: Contribution<'strategy'>, options: Record<string, unknown>, st: LayersStudent, classes = C, images?: number) => {
  const s = await c.create(c.options.parse(options) as never, testContext(dir));
  await s.init({ student: st, teacher, rng: new Rng(2), seed: 5, classes, ...(images !== undefined ? { images } : {}) });
  return s;
};
/** A head built like the strategy's (same kind, options and seed), for independent expected values. */
const headLike = async (spec: Record<string, unknown>, classes: number, dim: number, seed: number): Promise<Head> => {
  const h = await testContext(dir).build('head', spec as never);
  h.init({ classes, embeddingDim: dim, seed });
  return h;
};
const scalar = (t: tf.Scalar) => t.dataSync()[0]!;
const close = (got: number | undefined, want: number, what: string) => expect(got, what).to.be.closeTo(want, 1e-5 * Math.max(1, Math.abs(want)));

/** Tensor counts over `n` real Adam steps after a first one: flat. */
async function flat(strategy: Strategy, st: LayersStudent, data: DataSource, n = 5): Promise<{ first: Readonly<Record<string, number>>; last: Readonly<Record<string, number>> }> {
  const { ctx, opt } = context(strategy, st, data, true);
  const first = await strategy.step(ctx);
  let last = first;
  const counts: number[] = [];
  for (let i = 0; i < n; i++) { ctx.step = i + 1; last = await strategy.step(ctx); counts.push(tf.memory().numTensors); }
  expect(new Set(counts).size, `tensor counts ${counts.join(',')}`).to.equal(1);
  opt.dispose();
  return { first, last };
}

describe('label-based strategies', function () {
  this.timeout(60_000);

  describe('margin-only', () => {
    it('logs the head\'s CE of the batch (ArcFace s 64 m 0.5 by default), flat tensors, the loss falls', async () => {
      const st = student();
      const s = await make(marginOnly as Contribution<'strategy'>, {}, st);
      const h = await headLike({ kind: 'arcface', s: 64, m: 0.5 }, C, D, 5);
      const want = tf.tidy(() => scalar(h.loss(st.forward(images(), true), tf.tensor1d(LABELS, 'int32'))));
      const got = await s.step(context(s, st, fixedData(LABELS), false).ctx);
      expect(Object.keys(got)).to.deep.equal(['identity']);
      close(got.identity, want, 'identity');
      const { first, last } = await flat(s, st, fixedData(LABELS));
      expect(last.identity!).to.be.below(first.identity!);
      s.dispose(); h.dispose(); st.dispose();
    });
  });

  describe('ekd', () => {
    it('logs weight·L_EKD on the whole batch and the ArcFace CE (m 0.4) on the general half only', async () => {
      const st = student();
      const s = await make(ekd as Contribution<'strategy'>, { weight: 2 }, st);
      const h = await headLike({ kind: 'arcface', s: 64, m: 0.4 }, C, D, 5);
      const x = images(), t = teacherEmb();
      const f = st.forward(x, true);
      const anchors = new EkdAnchors();
      const r = ekdLoss(f, t, LABELS, anchors);
      const ceGeneral = tf.tidy(() => scalar(h.loss(f.slice([0, 0], [4, -1]), tf.tensor1d(LABELS.subarray(0, 4), 'int32'))));
      const ceAll = tf.tidy(() => scalar(h.loss(f, tf.tensor1d(LABELS, 'int32'))));
      const want = { ekd: 2 * scalar(r.loss), pos: scalar(r.pos), neg: scalar(r.neg) };
      tf.dispose([x, t, f, r.loss, r.pos, r.neg]);
      expect(want.pos).to.be.above(0);
      expect(Math.abs(ceAll - ceGeneral), 'the rule must matter on this batch').to.be.above(1e-3);

      const got = await s.step(context(s, st, fixedData(LABELS), false).ctx);
      expect(Object.keys(got).sort()).to.deep.equal(['ekd', 'ekdEmptyPositives', 'ekdNeg', 'ekdPos', 'identity']);
      close(got.ekd, want.ekd, 'ekd');
      close(got.ekdPos, want.pos, 'ekdPos');
      close(got.ekdNeg, want.neg, 'ekdNeg');
      close(got.identity, ceGeneral, 'identity on the first B/2 samples');
      expect(got.ekdEmptyPositives).to.equal(0);
      // One anchor update per step, the same as the loss function's.
      const a = (s.state() as { anchors: { student: number[]; teacher: number[]; updates: number } }).anchors;
      expect(a.updates).to.equal(1);
      a.student.forEach((v, k) => expect(v).to.be.closeTo(anchors.student[k]!, 1e-6));
      a.teacher.forEach((v, k) => expect(v).to.be.closeTo(anchors.teacher[k]!, 1e-6));

      const s1 = await make(ekd as Contribution<'strategy'>, { generalFraction: 1 }, st);
      const all = await s1.step(context(s1, st, fixedData(LABELS), false).ctx);
      close(all.identity, ceAll, 'generalFraction 1: CE on the whole batch');
      s.dispose(); s1.dispose(); h.dispose(); st.dispose();
    });

    it('passes pairSelection, anchorInit, topK and the weights to the loss', async () => {
      const st = student();
      const opts = { pairSelection: 'strictCritical', anchorInit: 'firstBatch', topK: 5, posWeight: 0.5, negWeight: 0.25, temperature: 0.05 } as const;
      const s = await make(ekd as Contribution<'strategy'>, opts, st);
      const x = images(), t = teacherEmb();
      const f = st.forward(x, true);
      const anchors = new EkdAnchors('firstBatch');
      const r = ekdLoss(f, t, LABELS, anchors, opts);
      const plain = ekdLoss(f, t, LABELS, new EkdAnchors());
      const want = scalar(r.loss), other = scalar(plain.loss);
      tf.dispose([x, t, f, r.loss, r.pos, r.neg, plain.loss, plain.pos, plain.neg]);
      expect(Math.abs(want - other), 'the options must change the loss on this batch').to.be.above(1e-4);
      const got = await s.step(context(s, st, fixedData(LABELS), false).ctx);
      close(got.ekd, want, 'ekd with the options');
      const a = (s.state() as { anchors: { student: number[] } }).anchors;
      a.student.forEach((v, k) => expect(v).to.be.closeTo(anchors.student[k]!, 1e-6)); // firstBatch: τ of the batch
      s.dispose(); st.dispose();
    });

    it('a zero-positive batch gives L_pos = 0, is counted, and stays finite', async () => {
      const st = student();
      const s = await make(ekd as Contribution<'strategy'>, {}, st, 8);
      const { ctx } = context(s, st, fixedData(DISTINCT), false);
      const r1 = await s.step(ctx), r2 = await s.step(ctx);
      expect(r1.ekdPos).to.equal(0);
      expect([r1.ekdEmptyPositives, r2.ekdEmptyPositives]).to.deep.equal([1, 2]);
      expect(Object.values(r2).every(Number.isFinite)).to.equal(true);
      expect((s.state() as { emptyPositives: number }).emptyPositives).to.equal(2);
      s.dispose(); st.dispose();
    });

    it('state() carries the anchors and the counter: a restored copy continues identically; flat tensors', async () => {
      const st = student();
      const a = await make(ekd as Contribution<'strategy'>, {}, st);
      const { ctx } = context(a, st, fixedData(LABELS), false);
      for (let i = 0; i < 3; i++) await a.step(ctx);
      const saved = JSON.parse(JSON.stringify(a.state())) as JsonValue;
      expect((saved as { anchors: { updates: number } }).anchors.updates).to.equal(3);
      const b = await make(ekd as Contribution<'strategy'>, {}, st);
      const fresh = await b.step(context(b, st, fixedData(LABELS), false).ctx);
      b.restore(saved);
      const ra = await a.step(ctx);
      const rb = await b.step(context(b, st, fixedData(LABELS), false).ctx);
      expect(rb).to.deep.equal(ra);
      expect(fresh.ekd).to.not.equal(ra.ekd); // the anchors matter, so the check can fail
      await flat(a, st, fixedData(LABELS));
      a.dispose(); b.dispose(); st.dispose();
    });
  });

  describe('grouped-kd', () => {
    const teacherHeadWeights = (s: Strategy) => (s.state() as { teacherHead: { file: { weights: number[] } } }).teacherHead.file.weights;

    it('fits the teacher head first (its own updates, not in variables()), then logs CE + w·kd of the numpy-checked gkdLoss', async () => {
      const st = student();
      const s = await make(groupedKd as Contribution<'strategy'>, { groupSize: 2, teacherHead: { steps: 5, lr: 0.05 }, stepsPerEpoch: 1 }, st);
      expect(s.variables()).to.have.length(1); // the student's head only
      const data = fixedData(LABELS);
      const before = tf.tidy(() => st.forward(images(), true).dataSync());
      const { ctx } = context(s, st, data, false);
      ctx.step = 12; // epoch 12 ≥ 10: full ramp
      const got = await s.step(ctx);
      expect(data.calls, '5 fitting batches + 1 training batch').to.equal(6);
      expect(got.teacherHeadLoss).to.be.a('number');
      const w0 = teacherHeadWeights(s);

      // Expected: the student's head and a teacher head holding the fitted weights, same batch.
      const hs = await headLike({ kind: 'cosface', s: 64, m: 0.4 }, C, D, 5);
      const ht = await headLike({ kind: 'cosface', s: 64, m: 0.4 }, C, DT, 6);
      ht.variables()[0]!.assign(tf.tensor2d(w0, [DT, C]));
      const want = tf.tidy(() => {
        const y = tf.tensor1d(LABELS, 'int32');
        const f = st.forward(images(), true);
        expect(Array.from(f.dataSync())).to.deep.equal(Array.from(before)); // fitting did not touch the student
        const zs = hs.logits(f, y), zt = ht.logits(teacherEmb(), y);
        const g = gkdLoss(zs, zt, LABELS, { groupSize: 2 });
        return { ce: scalar(softmaxCrossEntropy(zs, y)), gkd: scalar(g.kd), bkd: scalar(g.bkd), pkd: scalar(g.pkd), k: g.groupSize };
      });
      close(got.ce, want.ce, 'ce');
      close(got.gkd, want.gkd, 'gkd (w = 1)');
      close(got.bkd, want.bkd, 'bkd');
      close(got.pkd, want.pkd, 'pkd');
      expect(got.groupSize).to.equal(2);
      expect(want.bkd).to.be.above(0);
      // Training steps leave the teacher head alone and never refit it.
      await flat(s, st, fixedData(LABELS), 4);
      expect(teacherHeadWeights(s)).to.deep.equal(w0);
      s.dispose(); hs.dispose(); ht.dispose(); st.dispose();
    });

    it('ramps the KD term by w(e) = min(e/10, 1); an epoch is ⌈images / batch⌉ steps unless stepsPerEpoch is set', async () => {
      const st = student();
      // images 20, batch 8 → 3 steps per epoch: steps 0..8 are epochs 0,0,0,1,1,1,2,2,2.
      const s = await make(groupedKd as Contribution<'strategy'>, { teacherHead: { steps: 1 } }, st, C, 20);
      const { ctx } = context(s, st, fixedData(LABELS), false);
      const ramps: number[] = [];
      for (let step = 0; step < 9; step++) {
        ctx.step = step;
        const r = await s.step(ctx);
        ramps.push(r.ramp!);
        // kd = α·bkd + β·pkd + λ·skd = bkd + 8·pkd (defaults), times w.
        close(r.gkd, r.ramp! * (r.bkd! + 8 * r.pkd!), `gkd at step ${step}`);
      }
      expect(ramps).to.deep.equal([0, 0, 0, 0.1, 0.1, 0.1, 0.2, 0.2, 0.2]);
      const s2 = await make(groupedKd as Contribution<'strategy'>, { teacherHead: { steps: 1 }, stepsPerEpoch: 2, warmupEpochs: 4 }, st, C, 20);
      const c2 = context(s2, st, fixedData(LABELS), false).ctx;
      c2.step = 5;
      expect((await s2.step(c2)).ramp).to.equal(0.5); // epoch ⌊5/2⌋ = 2 of 4
      s.dispose(); s2.dispose(); st.dispose();
    });

    it('k ≥ C (the default 10000 with 3 classes): k = C, L_BKD = L_SKD = 0, L_PKD = Hinton KD', async () => {
      const st = student();
      const s = await make(groupedKd as Contribution<'strategy'>, { teacherHead: { steps: 2 }, stepsPerEpoch: 1 }, st);
      const { ctx } = context(s, st, fixedData(LABELS), false);
      ctx.step = 10;
      const r = await s.step(ctx);
      expect(r.groupSize).to.equal(C);
      expect([r.bkd, r.skd]).to.deep.equal([0, 0]);
      const ht = await headLike({ kind: 'cosface', s: 64, m: 0.4 }, C, DT, 6);
      ht.variables()[0]!.assign(tf.tensor2d(teacherHeadWeights(s), [DT, C]));
      const hs = await headLike({ kind: 'cosface', s: 64, m: 0.4 }, C, D, 5);
      const hinton = tf.tidy(() => { const y = tf.tensor1d(LABELS, 'int32'); return scalar(logitKdLoss(hs.logits(st.forward(images(), true), y), ht.logits(teacherEmb(), y), 4)); });
      close(r.pkd, hinton, 'pkd = Hinton KD');
      close(r.gkd, 8 * hinton, 'gkd = β·pkd');
      s.dispose(); ht.dispose(); hs.dispose(); st.dispose();
    });

    it('a restored copy keeps the fitted teacher head and does not refit it', async () => {
      const st = student();
      const a = await make(groupedKd as Contribution<'strategy'>, { teacherHead: { steps: 3 }, stepsPerEpoch: 1 }, st);
      const da = fixedData(LABELS);
      const { ctx } = context(a, st, da, false);
      await a.step(ctx);
      const saved = JSON.parse(JSON.stringify(a.state())) as JsonValue;
      const b = await make(groupedKd as Contribution<'strategy'>, { teacherHead: { steps: 3 }, stepsPerEpoch: 1 }, st);
      b.restore(saved);
      const db = fixedData(LABELS);
      ctx.step = 11;
      const cb = context(b, st, db, false).ctx;
      cb.step = 11;
      expect(await b.step(cb)).to.deep.equal(await a.step(ctx));
      expect(db.calls, 'no refit after restore').to.equal(1);
      a.dispose(); b.dispose(); st.dispose();
    });

    it('loads a teacher head from a file (and names a shape mismatch)', async () => {
      const st = student();
      const w = Array.from({ length: DT * C }, (_, i) => Math.cos(i));
      const file = path.join(dir, 'head.json');
      writeFileSync(file, JSON.stringify({ classes: C, embeddingDim: DT, weights: w }));
      const s = await make(groupedKd as Contribution<'strategy'>, { teacherHead: { file }, stepsPerEpoch: 1 }, st);
      const data = fixedData(LABELS);
      const r = await s.step(context(s, st, data, false).ctx);
      expect(data.calls).to.equal(1);
      expect(r.teacherHeadLoss).to.equal(undefined);
      const bad = path.join(dir, 'bad.json');
      writeFileSync(bad, JSON.stringify({ classes: C + 1, embeddingDim: DT, weights: w }));
      let err: Error | undefined;
      await make(groupedKd as Contribution<'strategy'>, { teacherHead: { file: bad } }, st).catch((e: Error) => { err = e; });
      expect(err?.message).to.contain('holds a 6×4 head').and.contain('needs 6×3');
      s.dispose(); st.dispose();
    });
  });

  describe('logit-kd', () => {
    it('logs CE + T²/B·KL of the numpy-checked logitKdLoss (T 4), with and without the teacher margin; flat tensors', async () => {
      const st = student();
      for (const withMargin of [true, false]) {
        const s = await make(logitKd as Contribution<'strategy'>, { teacherHead: { steps: 2 }, teacherLogitsWithMargin: withMargin, weight: 0.5 }, st);
        const got = await s.step(context(s, st, fixedData(LABELS), false).ctx);
        const w = (s.state() as { teacherHead: { file: { weights: number[] } } }).teacherHead.file.weights;
        const ht = await headLike({ kind: 'cosface', s: 64, m: 0.4 }, C, DT, 6);
        ht.variables()[0]!.assign(tf.tensor2d(w, [DT, C]));
        const hs = await headLike({ kind: 'cosface', s: 64, m: 0.4 }, C, D, 5);
        const want = tf.tidy(() => {
          const y = tf.tensor1d(LABELS, 'int32');
          const zs = hs.logits(st.forward(images(), true), y);
          const zt = withMargin ? ht.logits(teacherEmb(), y) : ht.cosineLogits(teacherEmb());
          return { ce: scalar(softmaxCrossEntropy(zs, y)), kd: 0.5 * scalar(logitKdLoss(zs, zt, 4)) };
        });
        close(got.ce, want.ce, 'ce');
        close(got.kd, want.kd, `kd (teacher margin ${withMargin})`);
        if (withMargin) await flat(s, st, fixedData(LABELS));
        s.dispose(); ht.dispose(); hs.dispose();
      }
      st.dispose();
    });
  });
});
