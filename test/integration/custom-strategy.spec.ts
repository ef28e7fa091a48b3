import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { hardCosineLoss } from '../../examples/custom-strategy/hard-cosine-kd.js';
import { runCli } from '../helpers/cli.js';
import { makeIdentityFolder, makeTinyTeacher, tmpDir } from '../helpers/fixtures.js';

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
});
