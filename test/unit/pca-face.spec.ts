import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { z } from 'zod';
import { builtinModules } from '../../builtins.js';
import { contribution, contributionModule, type BuildContext } from '../../core/di/contribution.js';
import { createRootContainer } from '../../core/di/container.js';
import { ContributionRegistry } from '../../core/di/registry.js';
import { contextFor } from '../../core/engine/run.js';
import { disposeBatch, sampleKey, type DataSource } from '../../core/interfaces/data-source.js';
import { Rng } from '../../core/util/rng.js';
import { stderrLogger } from '../../core/util/logger.js';
import { fitPca } from '../../data-sources/latent-generator/pca-fit.js';
import { pcaFace, pcaFaceOptions, type PcaFaceSource } from '../../data-sources/latent-generator/pca-face.js';
import { tmpDir } from '../helpers/fixtures.js';

// The synthetic set of test/fixtures/pca_face_reference.py: N = 30 images of 2×2×3 (D = 12),
// x_ij = 100 + 30·a_i·b1_j + 15·c_i·b2_j + 5·e_i·b3_j + 0.5·sin(7i + 3j): rank 3 plus a little noise.
const N = 30, SIZE = 2, D = 12;
function syntheticSet(): Float32Array {
  const x = new Float32Array(N * D);
  for (let i = 0; i < N; i++) {
    const a = Math.sin(1.3 * i + 0.2), c = Math.cos(2.1 * i + 0.5), e = Math.sin(0.7 * i * i + 1.0);
    for (let j = 0; j < D; j++) {
      x[i * D + j] = 100 + 30 * a * Math.cos(0.9 * j) + 15 * c * Math.sin(1.7 * j + 0.4) + 5 * e * Math.cos(2.9 * j + 1.1) + 0.5 * Math.sin(7 * i + 3 * j);
    }
  }
  return x;
}
// numpy SVD of the centred set (float64), sign: largest |entry| positive.
const SIGMA = [54.52540571, 25.18877696, 7.511353113, 0.5921816411, 0.2374401908];
const U = [
  [0.3856754676, 0.2655362309, -0.1114220028, -0.3461062799, -0.3500641726, -0.05692562012, 0.2147887348, 0.396212779, 0.2404148827, -0.08592042827, -0.3734494559, -0.3391020114],
  [0.1025842927, 0.2558020114, -0.1748161312, -0.2846356972, 0.5056455834, 0.1568972641, -0.3833776066, -0.2766321832, 0.415358447, -0.009585448302, -0.3140987479, 0.19337303],
  [0.1793030883, -0.3003774558, 0.3551763603, -0.3357255866, 0.3014992974, -0.4253032254, 0.4450629754, -0.2709591079, 0.2016734624, -0.185921439, 0.1364943749, -0.04009537154],
];
const MSE_BY_K = [55.68821401, 4.577769426, 0.03279069797, 0.004541548563]; // k = 1..4
const EXPLAINED_3 = 0.9998889134;

/** A data source serving the synthetic set in order (a test stand-in for sample-faces / image-folder). */
class SyntheticFaces implements DataSource {
  private pos = 0;
  disposed = false;
  constructor(private readonly x: Float32Array) {}
  async init() { return { name: 'synthetic rank-3 set', images: N, skipped: [], listHash: 'synthetic-v1' }; }
  async next(n: number) {
    const idx = Array.from({ length: n }, () => this.pos++ % N);
    const buf = new Float32Array(n * D);
    idx.forEach((i, r) => buf.set(this.x.subarray(i * D, (i + 1) * D), r * D));
    return { images: tf.tensor4d(buf, [n, SIZE, SIZE, 3]), keys: idx.map((i) => sampleKey(`syn:${i}`)), cacheable: true };
  }
  state() { return this.pos; }
  restore(s: unknown) { this.pos = s as number; }
  dispose() { this.disposed = true; }
}
const synthetic = contribution({ slot: 'data', kind: 'test-synthetic-faces', summary: 'test only', options: z.object({}), async create() { return new SyntheticFaces(syntheticSet()); } });

function ctxFor(dir: string, seed = 0): BuildContext {
  const reg = ContributionRegistry.fromContainer(createRootContainer([...builtinModules, contributionModule(synthetic)]));
  return contextFor(reg, { seed, runDir: dir, cacheDir: path.join(dir, '.cache'), log: stderrLogger(true) });
}
// Recipes need size ≥ 8; the 2 px test set goes round the schema's bound.
const opts = (o: Record<string, unknown> = {}) => ({ ...pcaFaceOptions.parse({ fitOn: { kind: 'test-synthetic-faces' }, components: 3, ...o }), size: SIZE });
async function source(dir: string, o: Record<string, unknown> = {}, seed = 0): Promise<PcaFaceSource> {
  const s = (await pcaFace.create(opts(o), ctxFor(dir, seed))) as PcaFaceSource;
  await s.init();
  return s;
}

/** Mean squared residual of the set after projecting onto the model's k components. */
function reconstructionMse(x: Float32Array, mean: Float32Array, comps: Float32Array, k: number): number {
  let sse = 0;
  for (let i = 0; i < N; i++) {
    const r = Array.from({ length: D }, (_, j) => x[i * D + j]! - mean[j]!);
    const coef = Array.from({ length: k }, (_, c) => r.reduce((s, v, j) => s + v * comps[c * D + j]!, 0));
    for (let j = 0; j < D; j++) sse += (r[j]! - coef.reduce((s, a, c) => s + a * comps[c * D + j]!, 0)) ** 2;
  }
  return sse / (N * D);
}

describe('pca-face latent generator', () => {
  describe('fit (Gram eigen-decomposition)', () => {
    const x = syntheticSet();
    const m = fitPca(x, N, SIZE, 5);

    it('σ match numpy for the 3 planted directions and the 2 noise ones', () => {
      Array.from(m.sigma).forEach((s, i) => expect(s).to.be.closeTo(SIGMA[i]!, 1e-4 * SIGMA[i]!));
    });

    it('the top 3 components are numpy\'s principal directions (same sign convention) and span the planted subspace', () => {
      for (let c = 0; c < 3; c++) for (let j = 0; j < D; j++) expect(m.components[c * D + j]).to.be.closeTo(U[c]![j]!, 1e-5);
      // The planted b1, b2, b3 lie in span(u0, u1, u2) up to the 0.5-amplitude noise.
      for (const f of [(j: number) => Math.cos(0.9 * j), (j: number) => Math.sin(1.7 * j + 0.4), (j: number) => Math.cos(2.9 * j + 1.1)]) {
        const b = Array.from({ length: D }, (_, j) => f(j));
        const proj = [0, 1, 2].map((c) => b.reduce((s, v, j) => s + v * m.components[c * D + j]!, 0));
        const inSpan = proj.reduce((s, p) => s + p * p, 0) / b.reduce((s, v) => s + v * v, 0);
        expect(inSpan).to.be.above(0.99);
      }
    });

    it('components are orthonormal; the mean is the data mean', () => {
      for (let a = 0; a < 5; a++) for (let b = 0; b < 5; b++) {
        let dot = 0;
        for (let j = 0; j < D; j++) dot += m.components[a * D + j]! * m.components[b * D + j]!;
        expect(dot).to.be.closeTo(a === b ? 1 : 0, 1e-6);
      }
      for (let j = 0; j < D; j++) {
        let s = 0;
        for (let i = 0; i < N; i++) s += x[i * D + j]!;
        expect(m.mean[j]).to.be.closeTo(s / N, 1e-4);
      }
    });

    it('reconstruction error falls with k, as numpy\'s Σ_{j≥k} λ_j / (N·D)', () => {
      const errs = [1, 2, 3, 4].map((k) => reconstructionMse(x, m.mean, m.components, k));
      errs.forEach((e, i) => expect(e).to.be.closeTo(MSE_BY_K[i]!, 1e-3 * MSE_BY_K[i]! + 1e-6));
      for (let i = 1; i < errs.length; i++) expect(errs[i]).to.be.below(errs[i - 1]!);
      expect(fitPca(x, N, SIZE, 3).explained).to.be.closeTo(EXPLAINED_3, 1e-8);
    });

    it('names the problem: too few images, too few directions', () => {
      expect(() => fitPca(x.subarray(0, 3 * D), 3, SIZE, 3)).to.throw(/3 components need at least 4 images/);
      const flat = new Float32Array(N * D).fill(7);
      expect(() => fitPca(flat, N, SIZE, 1)).to.throw(/component 1 has no variance/);
    });
  });

  describe('source', () => {
    it('saves the fit under cacheDir and reuses it: the loaded model is identical; other inputs give another file', async () => {
      const dir = tmpDir('pca-cache');
      const a = await source(dir);
      const files = readdirSync(path.join(dir, '.cache', 'pca-face'));
      expect(files).to.have.length(1);
      const f = path.join(dir, '.cache', 'pca-face', files[0]!);
      const mtime = statSync(f).mtimeMs;
      const b = await source(dir);
      expect(statSync(f).mtimeMs, 'not rewritten').to.equal(mtime);
      const [ma, mb] = [a.model!, b.model!];
      expect(Array.from(mb.mean)).to.deep.equal(Array.from(ma.mean));
      expect(Array.from(mb.components)).to.deep.equal(Array.from(ma.components));
      expect(Array.from(mb.sigma)).to.deep.equal(Array.from(ma.sigma));
      expect(Array.from(ma.sigma).map((s, i) => Math.abs(s - SIGMA[i]!) < 1e-4 * SIGMA[i]!)).to.deep.equal([true, true, true]);
      (await source(dir, { components: 2 })).dispose();
      expect(readdirSync(path.join(dir, '.cache', 'pca-face'))).to.have.length(2);
      a.dispose(); b.dispose();
    });

    it('an explicit modelFile fitted on other inputs is refitted', async () => {
      const dir = tmpDir('pca-file');
      const modelFile = path.join(dir, 'faces.pcaf');
      (await source(dir, { modelFile, components: 2 })).dispose();
      const s = await source(dir, { modelFile, components: 3 });
      expect(s.model!.sigma).to.have.length(3);
      expect(existsSync(path.join(dir, '.cache', 'pca-face')), 'nothing written to the cache').to.equal(false);
      s.dispose();
    });

    it('renders clamp(mean + Σ σ_k w_k u_k, 0, 255)', async () => {
      const s = await source(tmpDir('pca-render'));
      const m = s.model!;
      const w = [[1, -2, 0.5], [40, 0, 0]]; // the second leaves 0..255 and is clamped
      const img = s.render(tf.tensor2d(w));
      expect(img.shape).to.deep.equal([2, SIZE, SIZE, 3]);
      const got = Array.from(img.dataSync());
      img.dispose();
      w.forEach((row, i) => {
        for (let j = 0; j < D; j++) {
          const v = m.mean[j]! + row.reduce((acc, wk, k) => acc + m.sigma[k]! * wk * m.components[k * D + j]!, 0);
          expect(got[i * D + j]).to.be.closeTo(Math.min(255, Math.max(0, v)), 1e-3);
        }
      });
      expect(got.slice(D).some((v) => v === 0 || v === 255)).to.equal(true);
      s.dispose();
    });

    it('fresh latents are the seeded N(0, ψ²I) stream; not cacheable; distinct keys', async () => {
      const dir = tmpDir('pca-fresh');
      const s = await source(dir, { truncation: 0.5 }, 9);
      const rng = Rng.fromState((s.state() as { rng: [number, number, number, number] }).rng);
      const b = await s.next(4);
      expect(b.cacheable).to.equal(false);
      expect(new Set(b.keys).size).to.equal(4);
      expect(b.latents.shape).to.deep.equal([4, 3]);
      Array.from(b.latents.dataSync()).forEach((v) => expect(v).to.be.closeTo(0.5 * rng.normal(), 1e-6));
      disposeBatch(b);
      s.dispose();
    });

    it('feedback: the next batch is w′ = w + std·ε of the named rows (seeded ε), rendered; then fresh again', async () => {
      const s = await source(tmpDir('pca-feedback'), {}, 3);
      const a = await s.next(4);
      const w = a.latents.arraySync();
      const rng = Rng.fromState((s.state() as { rng: [number, number, number, number] }).rng);
      s.feedback([a.keys[3]!, a.keys[1]!], Float32Array.from([0.5, 2]));
      const b = await s.next(2);
      const want = [[3, 0.5], [1, 2]].map(([r, std]) => w[r!]!.map((v) => v + std! * rng.normal()));
      const got = b.latents.arraySync();
      want.forEach((row, i) => row.forEach((v, j) => expect(got[i]![j]).to.be.closeTo(v, 1e-5)));
      const rendered = s.render(b.latents);
      expect(Array.from(b.images.dataSync())).to.deep.equal(Array.from(rendered.dataSync()));
      expect(b.keys.some((k) => a.keys.includes(k)), 'new images get new keys').to.equal(false);
      const c = await s.next(2);
      const fresh = c.latents.arraySync();
      fresh.forEach((row) => row.forEach((v) => expect(v).to.be.closeTo(rng.normal(), 1e-6)));
      tf.dispose(rendered);
      [a, b, c].forEach(disposeBatch);
      s.feedback([c.keys[0]!], Float32Array.from([1]));
      await s.next(3).then(() => expect.fail('should throw'), (e: Error) => expect(e.message).to.contain('resampled batch has 1 rows'));
      expect(() => s.feedback([a.keys[0]!], Float32Array.from([1]))).to.throw(/not in the last batch/);
      s.dispose();
    });

    it('state()/restore() reproduces the stream, a pending resample included', async () => {
      const dir = tmpDir('pca-state');
      const s1 = await source(dir, {}, 5);
      disposeBatch(await s1.next(3));
      const b = await s1.next(3);
      s1.feedback(b.keys, Float32Array.from([1, 0.2, 0]));
      disposeBatch(b);
      const st = JSON.parse(JSON.stringify(s1.state()));
      const s2 = await source(dir, {}, 77);
      s2.restore(st);
      for (const n of [3, 2, 4]) {
        const [x, y] = [await s1.next(n), await s2.next(n)];
        expect(y.keys).to.deep.equal(x.keys);
        expect(Array.from(y.latents.dataSync())).to.deep.equal(Array.from(x.latents.dataSync()));
        [x, y].forEach(disposeBatch);
      }
      s1.dispose(); s2.dispose();
    });

    it('tensor count stays flat across next → feedback → next steps', async () => {
      const s = await source(tmpDir('pca-leak'));
      const step = async () => {
        const a = await s.next(4);
        s.feedback(a.keys, Float32Array.from([0.1, 0.2, 0.3, 0.4]));
        disposeBatch(a);
        disposeBatch(await s.next(4));
      };
      await step();
      const before = tf.memory().numTensors;
      for (let i = 0; i < 5; i++) await step();
      expect(tf.memory().numTensors).to.equal(before);
      s.dispose();
      expect(tf.memory().numTensors).to.equal(before - 3);
    });
  });
});
