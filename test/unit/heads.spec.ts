import { writeFileSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { z } from 'zod';
import { builtinModules } from '../../builtins.js';
import { createRootContainer } from '../../core/di/container.js';
import { contribution, contributionModule } from '../../core/di/contribution.js';
import { contextFor } from '../../core/engine/run.js';
import { arcface, ArcFaceHead } from '../../core/heads/arcface.js';
import { cosface } from '../../core/heads/cosface.js';
import { elasticArcface, ElasticArcFaceHead } from '../../core/heads/elastic-arcface.js';
import { elasticCosface, ElasticCosFaceHead } from '../../core/heads/elastic-cosface.js';
import { cosines, COS_CLAMP, elasticArcMargin, marginLogits } from '../../core/heads/margins.js';
import type { Head } from '../../core/interfaces/head.js';
import { RecipeError } from '../../core/recipe/errors.js';
import { componentField } from '../../core/recipe/fields.js';
import { loadRecipe } from '../../core/recipe/load.js';
import { mergedRecipe } from '../../core/recipe/validate.js';
import { stderrLogger } from '../../core/util/logger.js';
import { tmpDir } from '../helpers/fixtures.js';

// Reference numbers: python3 test/fixtures/margin_heads.py (float64 numpy, formulas and
// sources in its docstring and core/heads/README.md), pasted here.
const REF = {
  clampBound: 0.9999998807907104,
  A: {
    cos: [[1.0, 0.1005038, -0.3464102, 0.5432145, 0.2222222], [0.3077935, -0.5671309, 0.5568079, 0.4365723, -0.5243889], [-1.0, -0.1005038, 0.3464102, -0.5432145, -0.2222222], [0.562544, 0.8593745, -0.3637591, 0.3361402, 0.537542]],
    arcface: { logits: [[56.1503, 6.43224, -22.17025, 34.76573, 14.22222], [19.69878, -36.29638, 5.78652, 27.94062, -33.56089], [-79.34162, -6.43224, 22.17025, -34.76573, -14.22222], [36.00281, 54.99997, -23.28058, 21.51297, 4.31796]], loss: 43.587061 },
    cosface: { logits: [[38.4, 6.43224, -22.17025, 34.76573, 14.22222], [19.69878, -36.29638, 10.03571, 27.94062, -33.56089], [-89.6, -6.43224, 22.17025, -34.76573, -14.22222], [36.00281, 54.99997, -23.28058, 21.51297, 8.80269]], loss: 43.974692 },
    'elastic-arcface': { logits: [[54.54523, 6.43224, -22.17025, 34.76573, 14.22222], [19.69878, -36.29638, 8.96485, 27.94062, -33.56089], [-56.18026, -6.43224, 22.17025, -34.76573, -14.22222], [36.00281, 54.99997, -23.28058, 21.51297, -2.07839]], loss: 38.601226 },
    'elastic-cosface': { logits: [[28.8, 6.43224, -22.17025, 34.76573, 14.22222], [19.69878, -36.29638, 6.83571, 27.94062, -33.56089], [-96.0, -6.43224, 22.17025, -34.76573, -14.22222], [36.00281, 54.99997, -23.28058, 21.51297, -3.99731]], loss: 51.060249 },
  },
  B: {
    cosTarget: [0.5661385, -0.9790671, 0.6895446],
    arcface: { loss: 7.44165, dE: [[-1.10195, -2.51697, -0.26239, 2.44096], [0.54748, 3.28401, 1.67502, 0.28676], [2.25203, -1.92859, -4.13811, 0.74297]], dW: [[-2.03052, 0.09069, -4.42305, 0.12133, -0.22585], [1.74072, 0.58113, -1.5881, 0.02961, 2.11884], [-1.74231, 0.46491, 1.17447, 0.01396, 0.5573], [-2.80449, -0.00259, -1.42044, -0.01211, 0.61495]] },
    cosface: { loss: 7.620974, dE: [[-0.85176, -2.20337, -0.32453, 1.94039], [0.54748, 3.28402, 1.67503, 0.28676], [1.85873, -1.64755, -3.49092, 0.67306]], dW: [[-1.68061, 0.09068, -4.05233, 0.1212, -0.22121], [1.45305, 0.58067, -1.26609, 0.02945, 2.06882], [-1.4463, 0.4645, 0.54668, 0.01397, 0.54389], [-2.31442, -0.00306, -1.07408, -0.01221, 0.60051]] },
    'elastic-arcface': { loss: 6.911392, dE: [[-1.10798, -2.52492, -0.26108, 2.45309], [0.42163, 2.55273, 2.16249, 1.89495], [2.25203, -1.92859, -4.13811, 0.74297]], dW: [[-2.03912, -0.22904, -4.42301, 0.12138, -0.22585], [1.74774, 0.16312, -1.5881, 0.02962, 2.11884], [-1.74957, 0.74389, 1.17449, 0.01396, 0.5573], [-2.81656, 1.06294, -1.42044, -0.01212, 0.61495]] },
    'elastic-cosface': { loss: 8.400487, dE: [[-0.85288, -2.20626, -0.32496, 1.94294], [0.54748, 3.28402, 1.67503, 0.28676], [1.97396, -1.74969, -3.70734, 0.71479]], dW: [[-1.68257, 0.09074, -4.11505, 0.12145, -0.23306], [1.45966, 0.58161, -1.32057, 0.02984, 2.19655], [-1.44968, 0.46517, 0.65289, 0.01392, 0.57813], [-2.31441, -0.00216, -1.13268, -0.01195, 0.63738]] },
  },
} as const;

// Inputs of the script (case A: exact edge cases, s = 64; case B: generic values, s = 8).
const EA = [[1, 0, 0, 0], [0.3, -0.2, 0.9, 0.1], [-2, 0, 0, 0], [0.5, 0.5, -0.5, 0.2]];
const WA = [[2, 0.1, -0.3, 0.6, 0.2], [0, 0.8, 0.4, -0.1, 0.5], [0, -0.5, 0.7, 0.2, -0.4], [0, 0.3, 0.1, 0.9, -0.6]];
const YA = [0, 2, 0, 4];
const MA = [0.55, 0.45, 0.5, 0.6];
const EB = [[0.6, -0.1, 0.3, 0.2], [-0.62, 0.15, -0.1, 0.05], [0.1, 0.7, -0.2, 0.4]];
const WB = [[0.5, 0.9, -0.2, 0.1, 0.3], [0.2, -0.3, 0.6, -0.4, 0.1], [0.1, 0.2, 0.3, 0.5, -0.7], [-0.3, 0.1, 0.2, 0.6, 0.4]];
const YB = [0, 1, 2];
const MB = [0.55, 0.45, 0.5];

type Kind = 'arcface' | 'cosface' | 'elastic-arcface' | 'elastic-cosface';
const KINDS: readonly Kind[] = ['arcface', 'cosface', 'elastic-arcface', 'elastic-cosface'];

/** Gives an elastic head the script's margins instead of random draws, to check the head path against numpy. */
function fixMargins(h: ElasticArcFaceHead | ElasticCosFaceHead, margins: readonly number[]): Head {
  h.drawMargins = (b: number) => { expect(b).to.equal(margins.length); return Float32Array.from(margins); };
  return h;
}

/** A head of `kind` with the script's weights; elastic heads use the script's margins. */
async function headWith(kind: Kind, W: number[][], s: number, margins: readonly number[]): Promise<Head> {
  const c = { arcface, cosface, 'elastic-arcface': elasticArcface, 'elastic-cosface': elasticCosface }[kind];
  const h = await c.create(c.options.parse({ s }) as never, {} as never);
  h.init({ classes: W[0]!.length, embeddingDim: W.length, seed: 1 });
  h.variables()[0]!.assign(tf.tensor2d(W));
  return h instanceof ElasticArcFaceHead || h instanceof ElasticCosFaceHead ? fixMargins(h, margins) : h;
}

const near = (got: ArrayLike<number>, want: readonly number[], tol: number) => {
  expect(got.length).to.equal(want.length);
  want.forEach((w, i) => expect(got[i]!, `index ${i}`).to.be.closeTo(w, tol));
};

describe('margin heads: logits and loss against numpy', () => {
  it('cos θ of unit rows and unit columns, exactly ±1 for (anti)parallel pairs', () => {
    const c = tf.tidy(() => cosines(tf.tensor2d(EA), tf.tensor2d(WA)).arraySync());
    c.forEach((row, i) => near(row, REF.A.cos[i]!, 1e-6));
    expect(c[0]![0]).to.equal(1);
    expect(c[2]![0]).to.equal(-1);
  });

  for (const kind of KINDS) {
    it(`${kind}: logits and mean CE (s 64; sample 2 has θ + m > π${kind.startsWith('elastic-arc') ? ', samples 0 and 2 hit the clamp' : ''})`, async () => {
      const h = await headWith(kind, WA, 64, MA);
      const [z, loss] = tf.tidy(() => [h.logits(tf.tensor2d(EA), tf.tensor1d(YA, 'int32')).arraySync(), h.loss(tf.tensor2d(EA), tf.tensor1d(YA, 'int32')).dataSync()[0]!] as const);
      z.forEach((row, i) => near(row, REF.A[kind].logits[i]!, 1e-3));
      expect(loss).to.be.closeTo(REF.A[kind].loss, 1e-3);
      h.dispose();
    });
  }

  it('arcface θ + m > π: cos θ − m·sin m below the threshold cos(π − m), cos(θ + m) above', async () => {
    // Hand values: cos θ = −1 ≤ cos(π − 0.5) = −0.87758 → −1 − 0.5·sin 0.5 = −1.23971 (×64 = −79.3416);
    // cos θ = 0.55681 > −0.87758 → cos(acos(0.55681) + 0.5) = 0.09041 (×64 = 5.7865).
    const h = await headWith('arcface', WA, 64, []);
    const z = tf.tidy(() => h.logits(tf.tensor2d(EA), tf.tensor1d(YA, 'int32')).arraySync());
    expect(z[2]![0]).to.be.closeTo(64 * (-1 - 0.5 * Math.sin(0.5)), 1e-3);
    expect(z[1]![2]).to.be.closeTo(64 * Math.cos(Math.acos(0.5568079) + 0.5), 1e-3);
    h.dispose();
  });

  it('elastic-arcface clamps cos θ to ±(1 − 1e-7) before arccos (float32: ±0.99999988)', () => {
    expect(Math.fround(COS_CLAMP)).to.equal(REF.clampBound);
    // Without the clamp the target for cos θ = 1, m = 0.55 would be cos 0.55 = 0.85252; with it, θ = acos(0.99999988) = 4.88e-4.
    const t = tf.tidy(() => elasticArcMargin(tf.tensor1d([1, -1]), tf.tensor1d([0.55, 0.5])).arraySync());
    near(t, [Math.cos(Math.acos(REF.clampBound) + 0.55), Math.cos(Math.acos(-REF.clampBound) + 0.5)], 1e-6);
    expect(t[0]).to.not.be.closeTo(Math.cos(0.55), 1e-4);
  });
});

describe('margin heads: gradients against float64 finite differences', () => {
  for (const kind of KINDS) {
    it(`${kind}: d loss / d embeddings and d loss / d W (s 8; sample 1 has θ + m > π)`, async () => {
      const h = await headWith(kind, WB, 8, MB);
      const E = tf.variable(tf.tensor2d(EB));
      const W = h.variables()[0]!;
      const { value, grads } = tf.variableGrads(() => h.loss(E, tf.tensor1d(YB, 'int32')), [E, W]);
      expect(value.dataSync()[0]).to.be.closeTo(REF.B[kind].loss, 1e-4);
      (grads[E.name]!.arraySync() as number[][]).forEach((row, i) => near(row, REF.B[kind].dE[i]!, 2e-4));
      (grads[W.name]!.arraySync() as number[][]).forEach((row, i) => near(row, REF.B[kind].dW[i]!, 2e-4));
      tf.dispose([value, E, ...Object.values(grads)]);
      h.dispose();
    });
  }

  it('stay finite where cos θ_y = ±1 (the clamp), for every head', async () => {
    for (const kind of KINDS) {
      const h = await headWith(kind, WA, 64, MA);
      const E = tf.variable(tf.tensor2d(EA));
      const { value, grads } = tf.variableGrads(() => h.loss(E, tf.tensor1d(YA, 'int32')), [E, h.variables()[0]!]);
      for (const g of Object.values(grads)) expect(Array.from(g.dataSync()).every(Number.isFinite), kind).to.equal(true);
      tf.dispose([value, E, ...Object.values(grads)]);
      h.dispose();
    }
  });
});

describe('margin heads: state, seeds, memory', () => {
  const build = async (kind: Kind, opts: Record<string, unknown> = {}) => {
    const c = { arcface, cosface, 'elastic-arcface': elasticArcface, 'elastic-cosface': elasticCosface }[kind];
    return c.create(c.options.parse(opts) as never, {} as never);
  };
  const E = () => tf.tensor2d([[0.3, -0.2, 0.9, 0.1], [0.5, 0.5, -0.5, 0.2], [-0.1, 0.4, 0.2, 0.8]]);
  const y = () => tf.tensor1d([1, 0, 2], 'int32');

  it('defaults: s 64 and m 0.5 / 0.4 / 0.5 (σ 0.05) / 0.35 (σ 0.0125)', async () => {
    const a = await build('arcface'), c = await build('cosface'), ea = await build('elastic-arcface'), ec = await build('elastic-cosface');
    expect([a, c, ea, ec].map((h) => (h as unknown as { s: number }).s)).to.deep.equal([64, 64, 64, 64]);
    expect([(a as ArcFaceHead).m, (c as unknown as { m: number }).m, (ea as ElasticArcFaceHead).m, (ec as ElasticCosFaceHead).m]).to.deep.equal([0.5, 0.4, 0.5, 0.35]);
    expect([(ea as ElasticArcFaceHead).sigma, (ec as ElasticCosFaceHead).sigma]).to.deep.equal([0.05, 0.0125]);
  });

  it('class weights [D, C] ~ N(0, 0.01²) from the seed: same seed same weights, another seed not', async () => {
    const w = async (seed: number) => {
      const h = await build('arcface');
      h.init({ classes: 200, embeddingDim: 64, seed });
      expect(h.classes).to.equal(200);
      const v = Array.from(h.variables()[0]!.dataSync());
      expect(h.variables()[0]!.shape).to.deep.equal([64, 200]);
      h.dispose();
      return v;
    };
    const [a, b, c] = [await w(3), await w(3), await w(4)];
    expect(a).to.deep.equal(b);
    expect(a).to.not.deep.equal(c);
    const mean = a.reduce((s, v) => s + v, 0) / a.length;
    const std = Math.sqrt(a.reduce((s, v) => s + (v - mean) ** 2, 0) / a.length);
    expect(mean).to.be.closeTo(0, 5e-4); // 12,800 draws: standard error 8.8e-5
    expect(std).to.be.closeTo(0.01, 5e-4);
  });

  it('elastic margins are N(m, σ²) per sample: 20,000 draws have mean m and std σ', async () => {
    const h = (await build('elastic-arcface')) as ElasticArcFaceHead;
    h.init({ classes: 3, embeddingDim: 4, seed: 9 });
    const m = Array.from(h.drawMargins(20_000));
    const mean = m.reduce((s, v) => s + v, 0) / m.length;
    const std = Math.sqrt(m.reduce((s, v) => s + (v - mean) ** 2, 0) / m.length);
    expect(mean).to.be.closeTo(0.5, 2e-3); // standard error 3.5e-4
    expect(std).to.be.closeTo(0.05, 2e-3);
    h.dispose();
  });

  it('elastic logits use one fresh margin per sample per call, drawn from the head\'s stream', async () => {
    const h = (await build('elastic-arcface')) as ElasticArcFaceHead;
    h.init({ classes: 3, embeddingDim: 4, seed: 5 });
    // A twin restored to the same state draws the margins h is about to draw.
    const twin = (await build('elastic-arcface')) as ElasticArcFaceHead;
    twin.init({ classes: 3, embeddingDim: 4, seed: 5 });
    twin.restore(h.state());
    const margins = twin.drawMargins(3);
    expect(new Set(margins).size).to.equal(3);
    const [got, want] = tf.tidy(() => [
      h.logits(E(), y()).arraySync(),
      marginLogits(cosines(E(), h.variables()[0] as tf.Variable<tf.Rank.R2>), y(), 64, (c) => elasticArcMargin(c, tf.tensor1d(margins))).arraySync(),
    ]);
    got.forEach((row, i) => near(row, want[i]!, 1e-4));
    const again = tf.tidy(() => h.logits(E(), y()).arraySync());
    expect(again[0]![1]).to.not.be.closeTo(got[0]![1]!, 1e-4); // next call, next margins
    expect(again[0]![0]).to.be.closeTo(got[0]![0]!, 1e-4); // non-target logits have no margin
    h.dispose();
    twin.dispose();
  });

  it('state()/restore() through JSON: a resumed head draws the margins the uninterrupted one draws', async () => {
    const run = async (resumeAfter?: number) => {
      let h = (await build('elastic-arcface')) as ElasticArcFaceHead;
      h.init({ classes: 3, embeddingDim: 4, seed: 7 });
      const losses: number[] = [];
      for (let i = 0; i < 4; i++) {
        if (i === resumeAfter) {
          const saved = JSON.parse(JSON.stringify({ state: h.state(), w: h.variables()[0]!.arraySync() }));
          h.dispose();
          h = (await build('elastic-arcface')) as ElasticArcFaceHead;
          h.init({ classes: 3, embeddingDim: 4, seed: 7 });
          h.variables()[0]!.assign(tf.tensor2d(saved.w));
          h.restore(saved.state);
        }
        losses.push(tf.tidy(() => h.loss(E(), y()).dataSync()[0]!));
      }
      h.dispose();
      return losses;
    };
    const straight = await run();
    expect(await run(2)).to.deep.equal(straight);
    expect(new Set(straight).size).to.equal(4); // each step drew other margins
  });

  it('fixed-margin heads have no state; restore rejects a malformed elastic state', async () => {
    const a = await build('arcface');
    a.init({ classes: 3, embeddingDim: 4, seed: 1 });
    expect(a.state()).to.equal(null);
    const e = await build('elastic-cosface');
    e.init({ classes: 3, embeddingDim: 4, seed: 1 });
    expect(() => e.restore({ rng: [1, 2] })).to.throw('expects { rng: [4 integers] }');
    [a, e].forEach((h) => h.dispose());
  });

  it('labels outside [0, C) and use before init() are errors', async () => {
    const h = await build('cosface');
    expect(() => h.cosineLogits(E())).to.throw('init() must run');
    h.init({ classes: 3, embeddingDim: 4, seed: 1 });
    expect(() => tf.tidy(() => h.loss(E(), tf.tensor1d([0, 3, 1], 'int32')))).to.throw('label 3 is outside the head\'s 3 classes');
    h.dispose();
  });

  it('cosineLogits is s·cos θ with no margin', async () => {
    const h = await headWith('arcface', WA, 64, []);
    const z = tf.tidy(() => h.cosineLogits(tf.tensor2d(EA)).arraySync());
    z.forEach((row, i) => near(row, REF.A.cos[i]!.map((c) => 64 * c), 1e-4));
    h.dispose();
  });

  it('the tensor count stays flat across gradient steps, for every head', async () => {
    for (const kind of KINDS) {
      const h = await build(kind);
      h.init({ classes: 3, embeddingDim: 4, seed: 1 });
      const e = E(), l = y();
      const opt = tf.train.sgd(0.1);
      const step = () => tf.tidy(() => opt.applyGradients(tf.variableGrads(() => h.loss(e, l), [...h.variables()]).grads));
      step();
      const before = tf.memory().numTensors;
      for (let i = 0; i < 5; i++) step();
      expect(tf.memory().numTensors, kind).to.equal(before);
      tf.dispose([e, l]);
      opt.dispose();
      h.dispose();
    }
  });
});

// A plugin strategy that declares `head: componentField('head')`, as a label-based strategy will.
const builtHeads: Head[] = [];
const headStrategy = contribution({
  slot: 'strategy', kind: 'test-head', summary: 'test only',
  options: z.object({ head: componentField('head') }),
  async create(o, ctx) {
    builtHeads.push(await ctx.build('head', o.head));
    return { name: 'test-head', async init() {}, async step() { return {}; }, variables: () => [], state: () => null, restore() {}, dispose() {} };
  },
});

describe('margin heads in a recipe (componentField)', () => {
  const dir = tmpDir('heads');
  const root = createRootContainer([...builtinModules, contributionModule(headStrategy)]);
  const write = (name: string, head: string) => {
    const f = path.join(dir, name);
    writeFileSync(f, `name: heads\nteacher: { kind: face-api-resnet34 }\nstudent: { kind: conv-student }\ndata: { kind: sample-faces }\nstages:\n  - name: s\n    steps: 1\n    strategy:\n      kind: test-head\n      head: ${head}\n`);
    return f;
  };

  it('validates head: { kind: arcface, m: 0.4 } with defaults filled and builds it via ctx.build', async () => {
    const r = await loadRecipe(write('ok.yaml', '{ kind: arcface, m: 0.4 }'), [], root);
    expect((mergedRecipe(r) as any).stages[0].strategy.head).to.deep.equal({ kind: 'arcface', m: 0.4, s: 64, initStd: 0.01 });
    const ctx = contextFor(r.registry, { seed: 0, runDir: dir, cacheDir: path.join(dir, '.cache'), log: stderrLogger(true) });
    const { kind: _k, ...opts } = r.stages[0]!.strategy.options;
    builtHeads.length = 0;
    await r.stages[0]!.strategy.contribution.create(opts as never, ctx);
    const h = builtHeads[0]!;
    expect(h).to.be.instanceOf(ArcFaceHead);
    expect([(h as ArcFaceHead).m, (h as ArcFaceHead).s]).to.deep.equal([0.4, 64]);
    h.dispose();
  });

  it('a misspelt head kind or option is located with the nearest name', async () => {
    const f = write('bad.yaml', '{ kind: elastic-arcfce }');
    const err = await loadRecipe(f, [], root).then(() => null, (e: unknown) => e);
    expect(err).to.be.instanceOf(RecipeError);
    expect((err as Error).message).to.contain('stages[0].strategy.head.kind');
    expect((err as Error).message).to.contain('did you mean "elastic-arcface"');
    const f2 = write('bad2.yaml', '{ kind: elastic-arcface, sigmaa: 0.1 }');
    const err2 = await loadRecipe(f2, [], root).then(() => null, (e: unknown) => e);
    expect((err2 as Error).message).to.contain('stages[0].strategy.head.sigmaa');
    expect((err2 as Error).message).to.contain('did you mean "sigma"');
  });
});
