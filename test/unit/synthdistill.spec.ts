import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { sampleKey, type Batch, type DataSource, type LatentBatch, type LatentGenerator, type SampleKey, type Teacher } from '../../core/interfaces/index.js';
import { LayersStudent, buildConvStudent } from '../../core/models/conv-student.js';
import { Rng } from '../../core/util/rng.js';
import { synthDistill, synthDistillOptions } from '../../strategies/synthdistill/synthdistill.js';
import { testContext, tmpDir } from '../helpers/fixtures.js';
import { stepContext } from '../helpers/step-context.js';

// The SynthDistill loop against a fake generator whose latents and noise are closed-form: what the
// strategy feeds back, how many updates it makes and on which batches.

const B = 8, L = 4, S = 16, D = 8;
const contract = { inputSize: [16, 16] as [number, number], colour: 'rgb' as const, normalise: 'symmetric' as const, crop: '' };

class FakeGenerator implements LatentGenerator {
  readonly latentDim = L;
  calls = 0;
  readonly feedbacks: { keys: SampleKey[]; std: number[] }[] = [];
  readonly served: ('fresh' | 'resampled')[] = [];
  private pending: { w: number[][]; std: Float32Array } | undefined;
  private last: { keys: SampleKey[]; w: number[][] } | undefined;

  static fresh(call: number, n: number): number[][] { return Array.from({ length: n }, (_, i) => Array.from({ length: L }, (_, j) => Math.sin(1.7 * call + 0.9 * i + 0.4 * j))); }
  static eps(call: number, i: number, j: number): number { return Math.cos(2.3 * call + 1.1 * i + 0.7 * j); }
  /** The rendering: a smooth image whose pattern depends on the latent. */
  static pixels(w: number[][]): tf.Tensor4D {
    return tf.tidy(() => {
      const lat = tf.tensor2d(w);
      const yy = tf.linspace(0, 1, S).reshape([1, S, 1, 1]), xx = tf.linspace(0, 1, S).reshape([1, 1, S, 1]);
      const a = lat.slice([0, 0], [-1, 1]).reshape([-1, 1, 1, 1]), b = lat.slice([0, 1], [-1, 1]).reshape([-1, 1, 1, 1]);
      const c = lat.slice([0, 2], [-1, 1]).reshape([-1, 1, 1, 1]), d = lat.slice([0, 3], [-1, 1]).reshape([-1, 1, 1, 1]);
      const chan = tf.tensor1d([1, 0.6, 0.3]).reshape([1, 1, 1, 3]);
      const v = tf.sin(tf.add(tf.add(tf.mul(yy, tf.mul(a, 6)), tf.mul(xx, tf.mul(b, 6))), tf.mul(chan, tf.add(c, d))));
      return tf.add(128, tf.mul(v, 100)) as tf.Tensor4D;
    });
  }

  async init() { return { name: 'fake-generator', images: 0, skipped: [], listHash: 'gen' }; }
  render(latents: tf.Tensor2D): tf.Tensor4D { return FakeGenerator.pixels(latents.arraySync()); }
  async next(n: number): Promise<LatentBatch> {
    const call = this.calls++;
    let w: number[][];
    if (this.pending) {
      const p = this.pending;
      w = p.w.map((row, i) => row.map((v, j) => v + p.std[i]! * FakeGenerator.eps(call, i, j)));
      this.pending = undefined;
      this.served.push('resampled');
    } else {
      w = FakeGenerator.fresh(call, n);
      this.served.push('fresh');
    }
    const keys = w.map((_, i) => sampleKey(`gen-${call}-${i}`));
    this.last = { keys, w };
    return { images: FakeGenerator.pixels(w), latents: tf.tensor2d(w), keys, cacheable: false };
  }
  feedback(keys: readonly SampleKey[], std: Float32Array): void {
    if (!this.last || keys.join() !== this.last.keys.join()) throw new Error('feedback for keys that are not the last batch');
    this.feedbacks.push({ keys: [...keys], std: Array.from(std) });
    this.pending = { w: this.last.w, std };
  }
  state() { return null; }
  restore() {}
  dispose() {}
}

function nets() {
  const student = new LayersStudent('s', buildConvStudent({ inputSize: 16, widths: [8, 16], embeddingDim: D }, 3), contract);
  const frozen = new LayersStudent('t', buildConvStudent({ inputSize: 16, widths: [8], embeddingDim: D }, 11), contract);
  const teacher: Teacher = { name: 't', contract, embeddingDim: D, weightsHash: 't', paramCount: frozen.paramCount, embed: async (x) => frozen.forward(x, false), dispose: () => frozen.dispose() };
  return { student, teacher };
}

/** cos(s_i, t_i) of host rows, written out here rather than taken from loss.ts. */
function rowCosines(s: number[][], t: number[][]): number[] {
  return s.map((r, i) => {
    const u = t[i]!;
    const dot = r.reduce((a, v, j) => a + v * u[j]!, 0);
    return dot / (Math.hypot(...r) * Math.hypot(...u));
  });
}

async function strategyOf(o: Record<string, unknown>, data: DataSource, student: LayersStudent, teacher: Teacher) {
  const s = await synthDistill.create(synthDistillOptions.parse(o), testContext(tmpDir('synthdistill')));
  await s.init({ student, teacher, data, rng: new Rng(1), seed: 2 });
  return s;
}

describe('synthdistill', () => {
  it('graded: feeds back std = α·(cos+1)/2 of the pre-update student output, then updates on the resampled batch (2 updates)', async () => {
    const { student, teacher } = nets();
    const gen = new FakeGenerator();
    const s = await strategyOf({ resampling: { mode: 'graded', alpha: 0.7 } }, gen, student, teacher);
    // Independent expectations: the same fresh batch through the same (not yet updated) nets.
    const x = FakeGenerator.pixels(FakeGenerator.fresh(0, B));
    const so = student.forward(x, true), to = await teacher.embed(x);
    const cos = rowCosines(so.arraySync(), to.arraySync());
    tf.dispose([x, so, to]);
    const { ctx, updates } = stepContext({ strategy: s, student, teacher, data: gen, batchSize: B, apply: false });
    const got = await s.step(ctx);
    expect(updates.map((u) => Object.keys(u))).to.deep.equal([['mse_fresh'], ['mse_resampled']]);
    expect(gen.served).to.deep.equal(['fresh', 'resampled']);
    expect(gen.feedbacks).to.have.length(1);
    expect(gen.feedbacks[0]!.keys).to.deep.equal(Array.from({ length: B }, (_, i) => `gen-0-${i}`));
    gen.feedbacks[0]!.std.forEach((v, i) => expect(v, `sample ${i}`).to.be.closeTo(0.7 * (cos[i]! + 1) / 2, 1e-5));
    expect(got.agreement).to.be.closeTo(cos.reduce((a, c) => a + (c + 1) / 2, 0) / B, 1e-5);
    // The second update is the MSE on the resampled latents w + std·ε (student unchanged: no optimiser step applied).
    const w1 = FakeGenerator.fresh(0, B).map((row, i) => row.map((v, j) => v + gen.feedbacks[0]!.std[i]! * FakeGenerator.eps(1, i, j)));
    const x1 = FakeGenerator.pixels(w1);
    const s1t = student.forward(x1, true), t1t = await teacher.embed(x1);
    const s1 = s1t.arraySync(), t1 = t1t.arraySync();
    tf.dispose([s1t, t1t]);
    const mse = s1.flatMap((r, i) => r.map((v, j) => (v - t1[i]![j]!) ** 2)).reduce((a, b) => a + b, 0) / (B * D);
    expect(got.mse_resampled).to.be.closeTo(mse, 1e-5 * Math.max(1, mse));
    x1.dispose();
    s.dispose(); student.dispose(); teacher.dispose();
  });

  it('worstK: σ for the k lowest-cosine samples, 0 elsewhere', async () => {
    const { student, teacher } = nets();
    const gen = new FakeGenerator();
    const s = await strategyOf({ resampling: { mode: 'worstK', k: 3, sigma: 0.25 } }, gen, student, teacher);
    const x = FakeGenerator.pixels(FakeGenerator.fresh(0, B));
    const so = student.forward(x, true), to = await teacher.embed(x);
    const cos = rowCosines(so.arraySync(), to.arraySync());
    tf.dispose([x, so, to]);
    const worst = new Set(cos.map((c, i) => [c, i] as const).sort((a, b) => a[0] - b[0]).slice(0, 3).map(([, i]) => i));
    const { ctx, updates } = stepContext({ strategy: s, student, teacher, data: gen, batchSize: B, apply: false });
    await s.step(ctx);
    expect(updates).to.have.length(2);
    expect(gen.feedbacks[0]!.std).to.deep.equal(cos.map((_, i) => (worst.has(i) ? 0.25 : 0)));
    s.dispose(); student.dispose(); teacher.dispose();
  });

  it('static: one update per step, no feedback, and any data source will do', async () => {
    const { student, teacher } = nets();
    const plain: DataSource = {
      async init() { return { name: 'plain', images: B, skipped: [], listHash: 'p' }; },
      async next(n: number): Promise<Batch> { return { images: FakeGenerator.pixels(FakeGenerator.fresh(5, n)), keys: Array.from({ length: n }, (_, i) => sampleKey(`p${i}`)), cacheable: true }; },
      state: () => null, restore() {}, dispose() {},
    };
    const s = await strategyOf({ resampling: { mode: 'static' }, embeddingNorm: 'l2' }, plain, student, teacher);
    const { ctx, updates } = stepContext({ strategy: s, student, teacher, data: plain, batchSize: B, apply: false });
    const got = await s.step(ctx);
    expect(updates).to.have.length(1);
    expect(Object.keys(got)).to.deep.equal(['mse_fresh']);
    s.dispose(); student.dispose(); teacher.dispose();
  });

  it('graded and worstK refuse a data source without a latent space at init', async () => {
    const { student, teacher } = nets();
    const plain = { init: async () => ({ name: 'p', images: 1, skipped: [], listHash: 'p' }), next: async () => { throw new Error('unused'); }, state: () => null, restore() {}, dispose() {} } as DataSource;
    for (const mode of ['graded', 'worstK']) {
      let err: Error | undefined;
      await strategyOf({ resampling: { mode } }, plain, student, teacher).catch((e: Error) => { err = e; });
      expect(err?.message).to.contain(`resampling.mode '${mode}'`).and.to.contain('latent generator');
    }
    student.dispose(); teacher.dispose();
  });

  it('keeps the tensor count flat over Adam steps, and lowers the fresh-batch MSE', async () => {
    const { student, teacher } = nets();
    const gen = new FakeGenerator();
    const s = await strategyOf({}, gen, student, teacher);
    const { ctx, opt } = stepContext({ strategy: s, student, teacher, data: gen, batchSize: B, apply: true, lr: 0.01 });
    const counts: number[] = [];
    const losses: number[] = [];
    for (let i = 0; i < 8; i++) { losses.push((await s.step(ctx)).mse_fresh!); counts.push(tf.memory().numTensors); }
    expect(new Set(counts.slice(1)).size, `tensor counts ${counts.join(',')}`).to.equal(1);
    expect(gen.served).to.deep.equal(Array.from({ length: 16 }, (_, i) => (i % 2 ? 'resampled' : 'fresh')));
    expect(losses.at(-1)).to.be.below(losses[0]!);
    opt.dispose(); s.dispose(); student.dispose(); teacher.dispose();
  });
});
