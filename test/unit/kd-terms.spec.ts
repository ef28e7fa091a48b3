import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { sampleKey, type Batch, type DataSource, type Teacher } from '../../core/interfaces/index.js';
import { cosineDistance, mse, normalisedMse } from '../../core/losses/embedding.js';
import { LayersStudent, buildConvStudent } from '../../core/models/conv-student.js';
import { validateRecipe } from '../../core/recipe/validate.js';
import { readRecipeSource } from '../../core/recipe/source.js';
import { ContributionRegistry } from '../../core/di/registry.js';
import { createRootContainer } from '../../core/di/container.js';
import { Rng } from '../../core/util/rng.js';
import { builtinModules } from '../../builtins.js';
import { cckdLoss } from '../../strategies/cckd/loss.js';
import { darkRankLoss } from '../../strategies/darkrank/loss.js';
import { kd, kdOptions } from '../../strategies/kd/kd.js';
import { rkdLoss } from '../../strategies/rkd/loss.js';
import { spLoss } from '../../strategies/sp/loss.js';
import { testContext, tmpDir } from '../helpers/fixtures.js';
import { stepContext } from '../helpers/step-context.js';
import { writeFileSync } from 'node:fs';
import path from 'node:path';

const B = 6, D = 8;
const images = () => tf.tensor4d(Float32Array.from({ length: B * 16 * 16 * 3 }, (_, i) => ((i * 7919) % 1009) % 256), [B, 16, 16, 3]);
const teacherEmb = () => tf.tensor2d(Float32Array.from({ length: B * D }, (_, i) => Math.sin(i * 1.3) + 0.1 * (i % 5)), [B, D]);
const fixedData = (): DataSource => ({
  async init() { return { name: 'fixed', images: B, skipped: [], listHash: 'x' }; },
  async next(): Promise<Batch> { return { images: images(), keys: Array.from({ length: B }, (_, i) => sampleKey(`k${i}`)), cacheable: false }; },
  state: () => null, restore() {}, dispose() {},
});

describe('kd: a weighted sum of named loss components', () => {
  it('logs each term as weight × its loss (the same numpy-checked functions the single strategies use), and the update uses their sum', async () => {
    const student = new LayersStudent('s', buildConvStudent({ inputSize: 16, widths: [8, 16], embeddingDim: D }, 3), { inputSize: [16, 16], colour: 'rgb', normalise: 'symmetric', crop: '' });
    const o = kdOptions.parse({
      terms: {
        cos: { loss: { kind: 'cosine' }, weight: 2 }, raw: { loss: { kind: 'mse' }, weight: 0.5 }, unit: { loss: { kind: 'mse-normalised' } },
        dist: { loss: { kind: 'rkd-distance' }, weight: 25 }, ang: { loss: { kind: 'rkd-angle' }, weight: 50 },
        sp: { loss: { kind: 'sp' }, weight: 3 }, dr: { loss: { kind: 'darkrank', alpha: 3, beta: 3, listLength: 3 } }, cc: { loss: { kind: 'cckd', gamma: 0.4, terms: 2 }, weight: 0.1 },
      },
    });
    const strategy = await kd.create(o, testContext(tmpDir('kd')));
    await strategy.init({ student, teacher: { embeddingDim: D } as Teacher, rng: new Rng(2), seed: 5 });
    const x = images(), t = teacherEmb();
    const s = student.forward(x, true);
    const v = (f: tf.Scalar) => { const n = f.dataSync()[0]!; f.dispose(); return n; };
    const r = rkdLoss(s, t);
    const want: Record<string, number> = {
      cos: 2 * v(cosineDistance(s, t)), raw: 0.5 * v(mse(s, t)), unit: v(normalisedMse(s, t)),
      dist: 25 * r.distance.dataSync()[0]!, ang: 50 * r.angle.dataSync()[0]!,
      sp: 3 * v(spLoss(s, t)), dr: v(darkRankLoss(s, t)), cc: 0.1 * v(cckdLoss(s, t)),
    };
    tf.dispose([x, t, s, r.loss, r.distance, r.angle]);
    const probe = stepContext({ strategy, student, teacher: {} as Teacher, data: fixedData(), batchSize: B, apply: false, teacherEmbeddings: async () => teacherEmb() });
    const got = await strategy.step(probe.ctx);
    expect(Object.keys(got).sort()).to.deep.equal(Object.keys(want).sort());
    for (const [name, w] of Object.entries(want)) expect(got[name], name).to.be.closeTo(w, 1e-5 * Math.max(1, Math.abs(w)));

    // The update is the sum of the terms: Adam steps on it lower that sum, with a flat tensor count.
    const run = stepContext({ strategy, student, teacher: {} as Teacher, data: fixedData(), batchSize: B, apply: true, teacherEmbeddings: async () => teacherEmb() });
    const total = (q: Readonly<Record<string, number>>) => Object.values(q).reduce((a, b) => a + b, 0);
    const first = await strategy.step(run.ctx);
    const counts: number[] = [];
    let last = first;
    for (let i = 0; i < 5; i++) { last = await strategy.step(run.ctx); counts.push(tf.memory().numTensors); }
    expect(new Set(counts).size, `tensor counts ${counts.join(',')}`).to.equal(1);
    expect(total(last)).to.be.below(total(first));
    run.opt.dispose(); probe.opt.dispose(); strategy.dispose(); student.dispose();
  });

  it('a recipe names the terms: unknown loss kinds, bad term names and an empty list are located errors', () => {
    const dir = tmpDir('kd-recipe');
    const reg = ContributionRegistry.fromContainer(createRootContainer(builtinModules));
    const check = (terms: string) => {
      const file = path.join(dir, `r${Math.random().toString(36).slice(2)}.yaml`);
      writeFileSync(file, `name: k\nteacher: { kind: face-api-resnet34 }\nstudent: { kind: conv-student }\ndata: { kind: sample-faces }\nstages:\n  - name: s\n    steps: 1\n    strategy:\n      kind: kd\n      terms: ${terms}\n`);
      try { validateRecipe(readRecipeSource(file), reg); return 'ok'; } catch (e) { return (e as Error).message; }
    };
    expect(check('{ cos: { loss: { kind: cosine } }, ang: { loss: { kind: rkd-angle }, weight: 50 } }')).to.equal('ok');
    expect(check('{ cos: { loss: { kind: cosin } } }')).to.match(/:10:\d+: stages\[0\]\.strategy\.terms\.cos\.loss\.kind: unknown loss kind "cosin".*did you mean "cosine"/);
    expect(check('{ cos: { loss: { kind: darkrank, alpha: -1 } } }')).to.match(/stages\[0\]\.strategy\.terms\.cos\.loss\.alpha: /);
    expect(check('{ "2x": { loss: { kind: cosine } } }')).to.match(/terms.*a term name is letters/);
    expect(check('{}')).to.match(/name at least one term/);
  });
});
