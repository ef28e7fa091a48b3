import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { runCli, runCliAsync } from '../helpers/cli.js';
import { makeIdentityFolder, makeTinyTeacher, tmpDir } from '../helpers/fixtures.js';

// Two-stage recipes of the hand-off strategies (mst-kd, bridge) run by the real CLI: a run
// killed in its second stage and resumed must log exactly what an uninterrupted run logs.

const PLUGIN = path.resolve('dist/test/fixtures/test-strategies.js');

function readMetrics(dir: string): Record<string, unknown>[] {
  return readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
}
const strip = (rows: Record<string, unknown>[]) => rows.map(({ imagesPerSec: _i, elapsedSec: _e, ...r }) => r);

/** Runs `recipe(name)` straight, then killed at step `killAt` of stage `killStage` and resumed; returns both run folders. */
export async function straightAndResumed(dir: string, recipe: (name: string) => string, killStage: string, killAt: number): Promise<{ a: string; b: string }> {
  const fa = path.join(dir, 'straight.yaml'), fb = path.join(dir, 'killed.yaml');
  writeFileSync(fa, recipe('straight'));
  writeFileSync(fb, recipe('killed'));
  const straight = runCli(['run', fa, '--quiet']);
  expect(straight.status, straight.stderr).to.equal(0);
  const killed = await runCliAsync(['run', fb, '--quiet'], { env: { FACEDISTILL_TEST_KILL_STAGE: killStage, FACEDISTILL_TEST_KILL_AT: String(killAt) } });
  expect(killed.signal, killed.stderr).to.equal('SIGKILL');
  const resumed = runCli(['run', fb, '--resume', '--quiet']);
  expect(resumed.status, resumed.stderr).to.equal(0);
  return { a: path.join(dir, 'runs', 'straight'), b: path.join(dir, 'runs', 'killed') };
}

describe('hand-off strategies in the engine', function () {
  this.timeout(600_000);

  it('mst-kd: multi-teacher → adaptor stage → EAF-KD student stage, identical across a kill and --resume in stage 2', async () => {
    const dir = tmpDir('mst-engine');
    const faces = await makeIdentityFolder(path.join(dir, 'faces'), 4, 4, 32);
    const t1 = await makeTinyTeacher(path.join(dir, 't1'), 24, 32);
    const t2 = await makeTinyTeacher(path.join(dir, 't2'), 32, 16);
    const recipe = (name: string) => `name: ${name}
seed: 3
backend: cpu
runsDir: ${path.join(dir, 'runs')}
plugins: [${PLUGIN}]
teacher: { kind: multi-teacher, teachers: [{ kind: layers-model, path: ${t1} }, { kind: layers-model, path: ${t2} }] }
student: { kind: conv-student, inputSize: 16, widths: [8, 16], embeddingDim: 16 }
data: { kind: image-folder, root: ${faces}, size: 32 }
stages:
  - name: fuse
    strategy: { kind: test-kill, stage: fuse, inner: { kind: mst-adaptor, adaptor: dldpo, hidden: 16, outputDim: 16 } }
    steps: 6
    batchSize: 4
    optimizer: { kind: sgd, lr: 0.25, momentum: 0.9 }
    checkpointEvery: 3
  - name: distil
    teacher: { kind: from-stage, stage: fuse }
    strategy: { kind: test-kill, stage: distil, inner: { kind: mst-kd, head: { kind: elastic-arcface } } }
    steps: 8
    batchSize: 4
    optimizer: { kind: adam, lr: 0.01 }
    checkpointEvery: 4
`;
    const { a, b } = await straightAndResumed(dir, recipe, 'distil', 6);
    const ma = strip(readMetrics(a)), mb = strip(readMetrics(b));
    const fuse = ma.filter((r) => r.stage === 'fuse' && r.event === undefined);
    const distil = ma.filter((r) => r.stage === 'distil' && r.event === undefined);
    expect(fuse).to.have.length(6);
    expect(fuse.every((r) => typeof r.identity === 'number' && r.mst_kd === undefined)).to.equal(true);
    expect(distil).to.have.length(8);
    expect(distil.every((r) => typeof r.mst_kd === 'number' && typeof r.identity === 'number')).to.equal(true);
    expect(mb).to.deep.equal(ma);
    expect(readFileSync(path.join(b, 'student', 'weights.bin')).equals(readFileSync(path.join(a, 'student', 'weights.bin')))).to.equal(true);
    expect(existsSync(path.join(a, 'stages', 'fuse', 'strategy', 'latest.json')), 'the adaptor is saved for the hand-off').to.equal(true);
    const manifest = JSON.parse(readFileSync(path.join(b, 'manifest.json'), 'utf8'));
    expect(Object.keys(manifest.teacherWeights).some((k) => k.startsWith('mst-adaptor-dldpo(multi('))).to.equal(true);
  });

  it('bridge: adapt (HR head P) → distil (LR student on the views source\'s student view), identical across a kill and --resume in step B', async () => {
    const dir = tmpDir('bridge-engine');
    const faces = await makeIdentityFolder(path.join(dir, 'faces'), 4, 4, 32);
    const teacher = await makeTinyTeacher(path.join(dir, 'teacher'), 24, 32);
    const recipe = (name: string) => `name: ${name}
seed: 5
backend: cpu
runsDir: ${path.join(dir, 'runs')}
plugins: [${PLUGIN}]
teacher: { kind: layers-model, path: ${teacher} }
student: { kind: conv-student, inputSize: 16, widths: [8, 16], embeddingDim: 8 }
data: { kind: views, source: { kind: image-folder, root: ${faces}, size: 32 }, lrSizes: [8, 12], studentSize: 16 }
stages:
  - name: adapt
    strategy: { kind: test-kill, stage: adapt, inner: { kind: bridge-adapt, outputDim: 8 } }
    steps: 5
    batchSize: 4
    optimizer: { kind: sgd, lr: 0.1, momentum: 0.9 }
    checkpointEvery: 5
  - name: distil
    teacher: { kind: from-stage, stage: adapt }
    strategy: { kind: test-kill, stage: distil, inner: { kind: bridge-distil } }
    steps: 8
    batchSize: 4
    optimizer: { kind: adam, lr: 0.005 }
    checkpointEvery: 4
`;
    const { a, b } = await straightAndResumed(dir, recipe, 'distil', 6);
    const ma = strip(readMetrics(a)), mb = strip(readMetrics(b));
    const rows = (stage: string) => ma.filter((r) => r.stage === stage && r.event === undefined);
    expect(rows('adapt')).to.have.length(5);
    expect(rows('adapt').every((r) => typeof r.identity === 'number' && typeof r.sp === 'number')).to.equal(true);
    expect(rows('distil')).to.have.length(8);
    expect(rows('distil').every((r) => typeof r.mimic === 'number' && typeof r.identity === 'number')).to.equal(true);
    expect(mb).to.deep.equal(ma);
    expect(readFileSync(path.join(b, 'student', 'weights.bin')).equals(readFileSync(path.join(a, 'student', 'weights.bin')))).to.equal(true);
    const manifest = JSON.parse(readFileSync(path.join(b, 'manifest.json'), 'utf8'));
    expect(Object.keys(manifest.teacherWeights).some((k) => k.startsWith('bridge-head('))).to.equal(true);
  });

  it('synthdistill on a fitted pca-face generator: two updates per step, identical across a kill and --resume; graded refuses a plain folder', async () => {
    const dir = tmpDir('synth-engine');
    const faces = await makeIdentityFolder(path.join(dir, 'faces'), 4, 4, 32);
    const teacher = await makeTinyTeacher(path.join(dir, 'teacher'), 24, 16);
    const recipe = (name: string, data = `{ kind: pca-face, fitOn: { kind: image-folder, root: ${faces}, size: 24 }, components: 6, size: 24 }`) => `name: ${name}
seed: 9
backend: cpu
runsDir: ${path.join(dir, 'runs')}
plugins: [${PLUGIN}]
teacher: { kind: layers-model, path: ${teacher} }
student: { kind: conv-student, inputSize: 16, widths: [8, 16], embeddingDim: 16 }
data: ${data}
stages:
  - name: distil
    strategy: { kind: test-kill, stage: distil, inner: { kind: synthdistill, resampling: { mode: graded, alpha: 1 } } }
    steps: 8
    batchSize: 4
    optimizer: { kind: adam, lr: 0.003 }
    checkpointEvery: 4
`;
    const { a, b } = await straightAndResumed(dir, recipe, 'distil', 6);
    const ma = strip(readMetrics(a)), mb = strip(readMetrics(b));
    const rows = ma.filter((r) => r.stage === 'distil' && r.event === undefined);
    expect(rows).to.have.length(8);
    expect(rows.every((r) => typeof r.mse_fresh === 'number' && typeof r.mse_resampled === 'number' && typeof r.agreement === 'number')).to.equal(true);
    expect(mb).to.deep.equal(ma);
    expect(readFileSync(path.join(b, 'student', 'weights.bin')).equals(readFileSync(path.join(a, 'student', 'weights.bin')))).to.equal(true);
    // Without a latent space the recipe is refused when the stage starts, naming the fix.
    const plain = path.join(dir, 'plain.yaml');
    writeFileSync(plain, recipe('plain', `{ kind: image-folder, root: ${faces}, size: 24 }`));
    const r = runCli(['run', plain, '--quiet']);
    expect(r.status).to.not.equal(0);
    expect(r.stderr).to.contain("resampling.mode 'graded'").and.to.contain('latent generator').and.to.contain('static');
    const log = path.join(dir, 'runs', 'plain', 'metrics.jsonl');
    expect(existsSync(log) ? readFileSync(log, 'utf8') : '', 'no step was trained').to.not.contain('mse_fresh');
  });
});
