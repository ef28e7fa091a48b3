import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { hardCosineLoss } from '../../examples/custom-strategy/hard-cosine-kd.js';
import { runCli } from '../helpers/cli.js';
import { makeIdentityFolder, makeTinyTeacher, tmpDir, writePairsFile } from '../helpers/fixtures.js';

// examples/custom-strategy: a plugin strategy in its own file, loaded by a recipe's `plugins:`.

describe('examples/custom-strategy (a user plugin)', function () {
  this.timeout(600_000);

  it('hard-cosine loss: hand-worked values', () => {
    // cos = [1, 1/√2, 0] → 1 − cos = d = [0, 0.2928932, 1].
    const s = tf.tensor2d([[1, 0], [0, 1], [2, 0]]), t = tf.tensor2d([[3, 0], [1, 1], [0, 1]]);
    // γ = 1: Σ d²/Σ d = 1.0857864/1.2928932; γ = 0: mean d.
    expect(hardCosineLoss(s, t, 1).dataSync()[0]).to.be.closeTo(0.8398113, 1e-6);
    expect(hardCosineLoss(s, t, 0).dataSync()[0]).to.be.closeTo(0.4309644, 1e-6);
    // All matched: uniform weights, loss 0 (no 0/0).
    expect(hardCosineLoss(s, s, 1).dataSync()[0]).to.be.closeTo(0, 1e-6);
    tf.dispose([s, t]);
  });

  it('facedistill plan resolves the example recipe and its plugin kind', () => {
    const r = runCli(['plan', 'examples/custom-strategy/recipe.yaml']);
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).to.contain('hard-cosine-kd');
  });

  it('a recipe naming the compiled plugin trains with it end to end', async () => {
    const dir = tmpDir('custom-strategy');
    const faces = await makeIdentityFolder(path.join(dir, 'faces'), 3, 3, 32);
    const teacher = await makeTinyTeacher(path.join(dir, 'teacher'), 24, 16);
    const file = path.join(dir, 'custom.yaml');
    writeFileSync(file, `name: custom
seed: 1
backend: cpu
runsDir: ${path.join(dir, 'runs')}
plugins: [dist/examples/custom-strategy/hard-cosine-kd.js]
teacher: { kind: layers-model, path: ${teacher} }
student: { kind: conv-student, inputSize: 16, widths: [8], embeddingDim: 16 }
data: { kind: image-folder, root: ${faces}, size: 32 }
stages:
  - name: train
    strategy: { kind: hard-cosine-kd, gamma: 2 }
    steps: 4
    batchSize: 4
`);
    const r = runCli(['run', file, '--quiet']);
    expect(r.status, r.stderr).to.equal(0);
    const rows = readFileSync(path.join(dir, 'runs', 'custom', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>).filter((m) => m.event === undefined && m.stage === 'train');
    expect(rows).to.have.length(4);
    for (const m of rows) expect(m.hard_cosine).to.be.a('number').within(0, 2);
  });

  it('examples/hooks/curve-csv: a hook plugin sees the run\'s events and writes its own file', async () => {
    const dir = tmpDir('hook');
    const faces = await makeIdentityFolder(path.join(dir, 'faces'), 4, 4, 32);
    const teacher = await makeTinyTeacher(path.join(dir, 'teacher'), 24, 16);
    const pairs = writePairsFile(path.join(dir, 'pairs.txt'), 4, 4);
    const file = path.join(dir, 'hook.yaml');
    writeFileSync(file, `name: hook
seed: 1
backend: cpu
runsDir: ${path.join(dir, 'runs')}
plugins: [dist/examples/hooks/curve-csv.js]
teacher: { kind: layers-model, path: ${teacher} }
student: { kind: conv-student, inputSize: 16, widths: [8], embeddingDim: 16 }
data: { kind: image-folder, root: ${faces}, size: 32 }
eval: { pairs: { kind: lfw-pairs, root: ${faces}, pairsFile: ${pairs}, size: 32 }, every: 3 }
stages:
  - name: train
    strategy: { kind: feature-kd }
    steps: 6
    batchSize: 4
`);
    const r = runCli(['run', file, '--quiet']);
    expect(r.status, r.stderr).to.equal(0);
    const rows = readFileSync(path.join(dir, 'runs', 'hook', 'curve.csv'), 'utf8').trim().split('\n').map((l) => l.split(','));
    expect(rows[0]).to.deep.equal(['stage', 'step', 'model', 'images_seen', 'train_sec', 'accuracy', 'std', 'auc', 'mean_terms']);
    expect(rows.slice(1).map((c) => `${c[2]}@${c[1]}`)).to.deep.equal(['teacher@0', 'student@0', 'student@3', 'student@6']);
    // The mean loss over the 3 steps before each point, from metrics.jsonl, is what the hook wrote.
    const steps = readFileSync(path.join(dir, 'runs', 'hook', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number | string>).filter((x) => x.event === undefined);
    const mean = (a: number, b: number) => steps.filter((x) => (x.step as number) > a && (x.step as number) <= b).reduce((s, x) => s + (x['feature_mse-normalised'] as number), 0) / 3;
    expect(Number(rows[3]![8]!.split('=')[1])).to.be.closeTo(mean(0, 3), 1e-4);
    expect(Number(rows[4]![8]!.split('=')[1])).to.be.closeTo(mean(3, 6), 1e-4);
  });

  it('a plugin outside the repository imports the API from \'facedistill\' (the exports map) and trains', async () => {
    const dir = tmpDir('outside-plugin');
    // A project of its own with facedistill as a dependency (linked, as npm link or a workspace would).
    mkdirSync(path.join(dir, 'node_modules'), { recursive: true });
    symlinkSync(path.resolve('.'), path.join(dir, 'node_modules', 'facedistill'), 'dir');
    writeFileSync(path.join(dir, 'my-kd.mjs'), `import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { contribution, contributionModule, cosineDistance, disposeBatch } from 'facedistill';
const myKd = contribution({
  slot: 'strategy', kind: 'my-outside-kd', summary: 'cosine KD from a plugin outside the repository',
  options: z.object({ weight: z.number().default(1) }),
  async create(o) {
    return {
      name: 'my-outside-kd', async init() {}, variables: () => [], state: () => null, restore() {}, dispose() {},
      async step(ctx) {
        const batch = await ctx.data.next(ctx.batchSize);
        const t = await ctx.teacherEmbeddings(batch);
        try { return await ctx.update(() => ({ outside: tf.mul(cosineDistance(ctx.student.forward(batch.images, true), t), o.weight) })); }
        finally { t.dispose(); disposeBatch(batch); }
      },
    };
  },
});
export default contributionModule(myKd);
`);
    // zod and tfjs resolve from the linked package's own node_modules, as they would from a real install's.
    symlinkSync(path.resolve('node_modules/zod'), path.join(dir, 'node_modules', 'zod'), 'dir');
    mkdirSync(path.join(dir, 'node_modules', '@tensorflow'), { recursive: true });
    symlinkSync(path.resolve('node_modules/@tensorflow/tfjs'), path.join(dir, 'node_modules', '@tensorflow', 'tfjs'), 'dir');
    const faces = await makeIdentityFolder(path.join(dir, 'faces'), 3, 3, 32);
    const teacher = await makeTinyTeacher(path.join(dir, 'teacher'), 24, 16);
    const file = path.join(dir, 'outside.yaml');
    writeFileSync(file, `name: outside
seed: 1
backend: cpu
runsDir: ${path.join(dir, 'runs')}
plugins: [${path.join(dir, 'my-kd.mjs')}]
teacher: { kind: layers-model, path: ${teacher} }
student: { kind: conv-student, inputSize: 16, widths: [8], embeddingDim: 16 }
data: { kind: image-folder, root: ${faces}, size: 32 }
stages:
  - name: train
    strategy: { kind: my-outside-kd, weight: 2 }
    steps: 3
    batchSize: 4
`);
    const r = runCli(['run', file, '--quiet']);
    expect(r.status, r.stderr).to.equal(0);
    const rows = readFileSync(path.join(dir, 'runs', 'outside', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
    expect(rows.map((x) => x.step)).to.deep.equal([1, 2, 3]);
    for (const x of rows) expect(x.outside).to.be.above(0);
  });
});
