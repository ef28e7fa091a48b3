import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { ContainerModule } from 'inversify';
import { builtinModules } from '../../builtins.js';
import { createRootContainer } from '../../core/di/container.js';
import { TOKENS } from '../../core/di/tokens.js';
import { RunError } from '../../core/engine/errors.js';
import { runRecipe } from '../../core/engine/run.js';
import type { Hook, RunEvent } from '../../core/interfaces/index.js';
import { loadRecipe } from '../../core/recipe/load.js';
import { stderrLogger } from '../../core/util/logger.js';
import { runCli, runCliAsync } from '../helpers/cli.js';
import { makeIdentityFolder, makeTinyTeacher, tmpDir, writePairsFile } from '../helpers/fixtures.js';

const PLUGIN = path.resolve('dist/test/fixtures/test-strategies.js');

async function fixture() {
  const dir = tmpDir('engine');
  const faces = await makeIdentityFolder(path.join(dir, 'faces'), 4, 4, 32);
  const teacher = await makeTinyTeacher(path.join(dir, 'teacher'), 24, 32);
  const pairs = writePairsFile(path.join(dir, 'pairs.txt'), 4, 4);
  return { dir, faces, teacher, pairs };
}

function recipeText(f: Awaited<ReturnType<typeof fixture>>, o: { name: string; strategy: string; steps: number; checkpointEvery: number; lr?: number; eval?: boolean; evalEvery?: number; backend?: string }): string {
  return `name: ${o.name}
seed: 7
backend: ${o.backend ?? 'cpu'}
runsDir: ${path.join(f.dir, 'runs')}
plugins: [${PLUGIN}]
teacher: { kind: layers-model, path: ${f.teacher} }
student: { kind: conv-student, inputSize: 16, widths: [8, 16], embeddingDim: 16 }
data: { kind: image-folder, root: ${f.faces}, size: 32 }
${o.eval ? `eval:\n  pairs: { kind: lfw-pairs, root: ${f.faces}, pairsFile: ${f.pairs}, size: 32 }\n  flip: true\n${o.evalEvery ? `  every: ${o.evalEvery}\n` : ''}` : ''}stages:
  - name: train
    strategy: ${o.strategy}
    steps: ${o.steps}
    batchSize: 4
    optimizer: { kind: adam, lr: ${o.lr ?? 0.01} }
    schedule: { kind: cosine, warmupSteps: 3 }
    checkpointEvery: ${o.checkpointEvery}
`;
}

function readMetrics(dir: string): Record<string, unknown>[] {
  return readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('engine', function () {
  this.timeout(600_000);
  const log = stderrLogger(true);

  it('keeps the tensor count flat over 200 training steps', async () => {
    const f = await fixture();
    const counts: number[] = [];
    const hook: Hook = { priority: 0, on: (e: RunEvent) => { if (e.type === 'step') counts.push(tf.memory().numTensors); } };
    const root = createRootContainer([...builtinModules, new ContainerModule(({ bind }) => { bind(TOKENS.Hook).toConstantValue(hook); })]);
    const file = path.join(f.dir, 'leak.yaml');
    writeFileSync(file, recipeText(f, { name: 'leak', strategy: '{ kind: feature-kd, loss: mse-normalised }', steps: 200, checkpointEvery: 50 }));
    const before = tf.memory().numTensors;
    await runRecipe(await loadRecipe(file, [], root), { root, log, progress: false });
    expect(counts).to.have.length(200);
    // After the first steps (Adam creates its slots lazily) the count must not move.
    expect(new Set(counts.slice(5)).size, `counts ${counts.join(',')}`).to.equal(1);
    expect(tf.memory().numTensors, 'everything released at the end of the run').to.equal(before);
  });

  it('decayBatchNorm false: BatchNorm γ gets no weight decay, every other weight the same update (SGD, one step)', async () => {
    const f = await fixture();
    const lr = 0.1, wd = 0.05;
    /** The exported student's weights by name (weights.bin is the manifest's float32 arrays, in order). */
    const studentWeights = (dir: string): Map<string, Float32Array> => {
      const manifest = (JSON.parse(readFileSync(path.join(dir, 'student', 'model.json'), 'utf8')) as { weightsManifest: { paths: string[]; weights: { name: string; shape: number[] }[] }[] }).weightsManifest[0]!;
      const bin = readFileSync(path.join(dir, 'student', manifest.paths[0]!));
      const all = new Float32Array(bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength));
      const out = new Map<string, Float32Array>();
      let at = 0;
      for (const w of manifest.weights) { const n = w.shape.reduce((a, b) => a * b, 1); out.set(w.name, all.slice(at, at + n)); at += n; }
      return out;
    };
    const run = async (decayBatchNorm: boolean) => {
      const file = path.join(f.dir, `wd-${decayBatchNorm}.yaml`);
      writeFileSync(file, recipeText(f, { name: `wd-${decayBatchNorm}`, strategy: '{ kind: feature-kd, loss: mse }', steps: 1, checkpointEvery: 1 })
        .replace(/optimizer: .*\n/, `optimizer: { kind: sgd, lr: ${lr}, momentum: 0, weightDecay: ${wd}, decayBatchNorm: ${decayBatchNorm} }\n`)
        .replace(/schedule: .*\n/, 'schedule: { kind: constant }\n'));
      const root = createRootContainer(builtinModules); // one per run: the recipe loads a plugin
      return studentWeights((await runRecipe(await loadRecipe(file, [], root), { root, log, progress: false })).dir);
    };
    const [decayed, kept] = [await run(true), await run(false)];
    let gammas = 0;
    // Layer names differ between the two builds (tfjs counts layers per process): match weights by position.
    const keptList = [...kept.values()];
    expect(keptList.length).to.equal(decayed.size);
    for (const [k, [name, a]] of [...decayed].entries()) {
      const b = keptList[k]!;
      // γ starts at 1: with decay it moved lr·wd·1 further down than without; moving statistics and the rest are equal.
      const want = name.endsWith('/gamma') ? lr * wd : 0;
      if (name.endsWith('/gamma')) gammas++;
      b.forEach((v, i) => expect(v - a[i]!, `${name}[${i}]`).to.be.closeTo(want, 1e-6));
    }
    expect(gammas).to.be.above(1);
  });

  it('optimizer.clipGradNorm scales every gradient by c/(‖g‖ + 1e-6) when the global norm is above c (SGD, one step of a linear loss)', async () => {
    const f = await fixture();
    const root = createRootContainer([...builtinModules]);
    const k = 0.3, lr = 0.5, clip = 0.2;
    const run = async (name: string, extra: string) => {
      const file = path.join(f.dir, `${name}.yaml`);
      writeFileSync(file, recipeText(f, { name, strategy: `{ kind: test-linear, k: ${k} }`, steps: 1, checkpointEvery: 1 })
        .replace('optimizer: { kind: adam, lr: 0.01 }', `optimizer: { kind: sgd, lr: ${lr}, momentum: 0, weightDecay: 0${extra} }`)
        .replace('schedule: { kind: cosine, warmupSteps: 3 }', 'schedule: { kind: constant }'));
      const res = await runRecipe(await loadRecipe(file, [], root), { root, log, progress: false });
      const manifest = (JSON.parse(readFileSync(path.join(res.dir, 'student', 'model.json'), 'utf8')) as { weightsManifest: { paths: string[]; weights: { name: string; shape: number[] }[] }[] }).weightsManifest[0]!;
      const bin = readFileSync(path.join(res.dir, 'student', manifest.paths[0]!));
      return { all: new Float32Array(bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength)), names: manifest.weights };
    };
    const plain = await run('unclipped', '');
    const clipped = await run('clipped', `, clipGradNorm: ${clip}`);
    // Trainable elements: every weight but BatchNorm's moving statistics.
    let n = 0;
    for (const w of plain.names) if (!/moving_(mean|variance)/.test(w.name)) n += w.shape.reduce((a, b) => a * b, 1);
    const coef = clip / (k * Math.sqrt(n) + 1e-6);
    expect(coef).to.be.below(1);
    // Same start (same seed); unclipped moved every trainable element by −lr·k, clipped by −lr·k·coef.
    let at = 0, checked = 0;
    for (const w of plain.names) {
      const size = w.shape.reduce((a, b) => a * b, 1);
      if (!/moving_(mean|variance)/.test(w.name)) {
        for (let i = at; i < at + size; i++) {
          const start = plain.all[i]! + lr * k;
          expect(clipped.all[i]! - start, `${w.name}[${i - at}]`).to.be.closeTo(-lr * k * coef, 1e-6);
          checked++;
        }
      }
      at += size;
    }
    expect(checked).to.equal(n);
  });

  it('kd through the CLI: cosine feature KD + RKD angle + ArcFace identity loss, each term a column of metrics.jsonl', async () => {
    const f = await fixture();
    const file = path.join(f.dir, 'kd.yaml');
    writeFileSync(file, recipeText(f, {
      name: 'kd', steps: 12, checkpointEvery: 6,
      strategy: '{ kind: kd, terms: { cos: { loss: { kind: cosine }, weight: 2 }, ang: { loss: { kind: rkd-angle }, weight: 50 } }, head: { kind: arcface, s: 16, m: 0.3 }, headWeight: 0.5 }',
    }));
    const r = runCli(['run', file, '--quiet']);
    expect(r.status, r.stderr).to.equal(0);
    const rows = readMetrics(path.join(f.dir, 'runs', 'kd')).filter((x) => x.event === undefined);
    expect(rows).to.have.length(12);
    for (const row of rows) {
      expect(Object.keys(row).filter((k) => !['stage', 'step', 'lr', 'imagesPerSec', 'elapsedSec'].includes(k)).sort()).to.deep.equal(['ang', 'cos', 'identity']);
      for (const k of ['ang', 'cos', 'identity']) expect(Number.isFinite(row[k] as number) && (row[k] as number) > 0, `${k} at step ${row.step}`).to.equal(true);
    }
    const report = readFileSync(path.join(f.dir, 'runs', 'kd', 'report.md'), 'utf8');
    expect(report).to.match(/\| train \| kd \| 12 \| 4 \| [\d.]+ \| cos = [\d.e+-]+, ang = [\d.e+-]+, identity = [\d.e+-]+ \|/);
  });

  it('stops a non-finite step, names the term, rolls back and halves the learning rate', async () => {
    const f = await fixture();
    const root = createRootContainer(builtinModules);
    const file = path.join(f.dir, 'nan.yaml');
    writeFileSync(file, recipeText(f, { name: 'nan', strategy: '{ kind: test-nan, nanAt: [7] }', steps: 12, checkpointEvery: 5 }));
    const res = await runRecipe(await loadRecipe(file, [], root), { root, log, progress: false });
    const m = readMetrics(res.dir);
    const rb = m.find((r) => r.event === 'rollback')!;
    expect(rb).to.deep.include({ stage: 'train', step: 8, term: 'exploding', toStep: 5, lrScale: 0.5 });
    const steps = m.filter((r) => r.event === undefined);
    expect(steps.map((r) => r.step)).to.deep.equal([1, 2, 3, 4, 5, 6, 7, 6, 7, 8, 9, 10, 11, 12], 'steps 6-7 are replayed after the rollback');
    // Same schedule position, half the rate, after the rollback.
    const lr6 = steps.filter((r) => r.step === 6).map((r) => r.lr as number);
    expect(lr6[1]).to.be.closeTo(lr6[0]! / 2, 1e-12);
    expect(steps.every((r) => Number.isFinite(r.mse))).to.equal(true);
  });

  it('gives up with a clear error when the loss stays non-finite', async () => {
    const f = await fixture();
    const root = createRootContainer(builtinModules);
    const file = path.join(f.dir, 'nan2.yaml');
    writeFileSync(file, recipeText(f, { name: 'nan2', strategy: '{ kind: test-nan, nanAt: [3], times: 100 }', steps: 6, checkpointEvery: 2 }));
    let err: unknown;
    try { await runRecipe(await loadRecipe(file, [], root), { root, log, progress: false }); } catch (e) { err = e; }
    expect(err).to.be.instanceOf(RunError);
    expect((err as Error).message).to.match(/loss term "exploding" is NaN at step 4; stopped after 3 rollback\(s\)/);
    expect(existsSync(path.join(f.dir, 'runs', 'nan2', 'checkpoints', 'latest.json'))).to.equal(true);
  });

  it('a run killed with SIGKILL mid-stage and resumed ends exactly like an uninterrupted run', async () => {
    const f = await fixture();
    const a = path.join(f.dir, 'a.yaml');
    const b = path.join(f.dir, 'b.yaml');
    writeFileSync(a, recipeText(f, { name: 'straight', strategy: '{ kind: test-kill-feature-kd }', steps: 30, checkpointEvery: 10, eval: true }));
    writeFileSync(b, recipeText(f, { name: 'killed', strategy: '{ kind: test-kill-feature-kd }', steps: 30, checkpointEvery: 10, eval: true }));
    const straight = runCli(['run', a, '--quiet']);
    expect(straight.status, straight.stderr).to.equal(0);
    const killed = await runCliAsync(['run', b, '--quiet'], { env: { FACEDISTILL_TEST_KILL_AT: '17' } });
    expect(killed.signal).to.equal('SIGKILL');
    const runB = path.join(f.dir, 'runs', 'killed');
    expect(existsSync(path.join(runB, 'report.md'))).to.equal(false);
    const resumed = runCli(['run', b, '--resume', '--quiet']);
    expect(resumed.status, resumed.stderr).to.equal(0);
    const runA = path.join(f.dir, 'runs', 'straight');
    const strip = (rows: Record<string, unknown>[]) => rows.map(({ imagesPerSec: _i, elapsedSec: _e, ...r }) => r);
    expect(strip(readMetrics(runB))).to.deep.equal(strip(readMetrics(runA)));
    expect(readFileSync(path.join(runB, 'student', 'weights.bin')).equals(readFileSync(path.join(runA, 'student', 'weights.bin')))).to.equal(true);
    const ea = JSON.parse(readFileSync(path.join(runA, 'eval.json'), 'utf8'));
    const eb = JSON.parse(readFileSync(path.join(runB, 'eval.json'), 'utf8'));
    delete ea.teacher.imagesPerSec; delete eb.teacher.imagesPerSec; delete ea.student.imagesPerSec; delete eb.student.imagesPerSec;
    expect(eb).to.deep.equal(ea);
    const manifest = JSON.parse(readFileSync(path.join(runB, 'manifest.json'), 'utf8'));
    expect(manifest.status).to.equal('complete');
  });

  it('eval.every: the learning curve has a point at step 0, every N steps and the last step, and a killed, resumed run has the same points', async () => {
    const f = await fixture();
    const a = path.join(f.dir, 'a.yaml');
    const b = path.join(f.dir, 'b.yaml');
    // 25 steps, every 10: points at 0, 10, 20 and 25 (the stage end); the kill at 17 falls between two points and after a checkpoint.
    writeFileSync(a, recipeText(f, { name: 'straight', strategy: '{ kind: test-kill-feature-kd }', steps: 25, checkpointEvery: 5, eval: true, evalEvery: 10 }));
    writeFileSync(b, recipeText(f, { name: 'killed', strategy: '{ kind: test-kill-feature-kd }', steps: 25, checkpointEvery: 5, eval: true, evalEvery: 10 }));
    const straight = runCli(['run', a, '--quiet']);
    expect(straight.status, straight.stderr).to.equal(0);
    const runA = path.join(f.dir, 'runs', 'straight');
    const points = readMetrics(runA).filter((r) => r.event === 'eval');
    expect(points.map((p) => `${p.model}@${p.step}`)).to.deep.equal(['teacher@0', 'student@0', 'student@10', 'student@20', 'student@25']);
    expect(points.map((p) => p.imagesSeen)).to.deep.equal([0, 0, 40, 80, 100]);
    const ev = JSON.parse(readFileSync(path.join(runA, 'eval.json'), 'utf8'));
    // The last point is the exported student, evaluated on the same images as the final evaluation.
    expect(points.at(-1)!.accuracy).to.equal(ev.student.accuracy);
    expect(points.at(-1)!.tarAtFar).to.deep.equal(ev.student.tarAtFar);
    expect(points[0]!.accuracy).to.equal(ev.teacher.accuracy);
    // Training moved the student: not every point is the same.
    expect(new Set(points.filter((p) => p.model === 'student').map((p) => p.auc)).size).to.be.greaterThan(1);
    const report = readFileSync(path.join(runA, 'report.md'), 'utf8');
    expect(report).to.contain('## Learning curve');
    expect(report).to.contain('| train | 25 | 100 |');
    const svg = readFileSync(path.join(runA, 'learning-curve.svg'), 'utf8');
    expect(svg.match(/class="series"/g)).to.have.length(4); // student and teacher, against images and against time

    const killed = await runCliAsync(['run', b, '--quiet'], { env: { FACEDISTILL_TEST_KILL_AT: '17' } });
    expect(killed.signal).to.equal('SIGKILL');
    const runB = path.join(f.dir, 'runs', 'killed');
    expect(readMetrics(runB).filter((r) => r.event === 'eval').map((p) => `${p.model}@${p.step}`)).to.deep.equal(['teacher@0', 'student@0', 'student@10']);
    const resumed = runCli(['run', b, '--resume', '--quiet']);
    expect(resumed.status, resumed.stderr).to.equal(0);
    const strip = (rows: Record<string, unknown>[]) => rows.map(({ imagesPerSec: _i, elapsedSec: _e, evalSec: _s, ...r }) => r);
    expect(strip(readMetrics(runB))).to.deep.equal(strip(readMetrics(runA)));
  });

  it('a later stage takes an earlier stage\'s hand-off as its teacher (from-stage), also across a kill and resume', async () => {
    const f = await fixture();
    const twoStages = (name: string) => recipeText(f, { name, strategy: '{ kind: test-adaptor }', steps: 8, checkpointEvery: 4 }).replace('stages:\n  - name: train', 'stages:\n  - name: fuse')
      + `  - name: distil\n    teacher: { kind: from-stage, stage: fuse }\n    strategy: { kind: test-kill-feature-kd }\n    steps: 12\n    batchSize: 4\n    checkpointEvery: 4\n`;
    const a = path.join(f.dir, 'two-a.yaml');
    const b = path.join(f.dir, 'two-b.yaml');
    writeFileSync(a, twoStages('two-straight'));
    writeFileSync(b, twoStages('two-killed'));
    const straight = runCli(['run', a, '--quiet']);
    expect(straight.status, straight.stderr).to.equal(0);
    const runA = path.join(f.dir, 'runs', 'two-straight');
    expect(existsSync(path.join(runA, 'stages', 'fuse', 'student', 'model.json'))).to.equal(true);
    expect(existsSync(path.join(runA, 'stages', 'fuse', 'strategy', 'latest.json'))).to.equal(true);
    const manifest = JSON.parse(readFileSync(path.join(runA, 'manifest.json'), 'utf8'));
    expect(Object.keys(manifest.teacherWeights).some((k) => k.startsWith('adaptor('))).to.equal(true);
    // One shared data source: read once, not once per stage (init() need not be idempotent).
    expect(manifest.data.distil.images).to.equal(16).and.equal(manifest.data.fuse.images);
    // Killed in the second stage: the resumed process rebuilds the adaptor from the stage bundle.
    const killed = await runCliAsync(['run', b, '--quiet'], { env: { FACEDISTILL_TEST_KILL_AT: '6' } });
    expect(killed.signal).to.equal('SIGKILL');
    const resumed = runCli(['run', b, '--resume', '--quiet']);
    expect(resumed.status, resumed.stderr).to.equal(0);
    const runB = path.join(f.dir, 'runs', 'two-killed');
    const strip = (rows: Record<string, unknown>[]) => rows.map(({ imagesPerSec: _i, elapsedSec: _e, ...r }) => r);
    const ma = strip(readMetrics(runA)), mb = strip(readMetrics(runB));
    expect(ma.filter((r) => r.stage === 'distil').length).to.equal(12);
    expect(mb).to.deep.equal(ma);
    expect(readFileSync(path.join(runB, 'student', 'weights.bin')).equals(readFileSync(path.join(runA, 'student', 'weights.bin')))).to.equal(true);
  });

  it('from-stage must name an earlier stage (located error, nothing written)', () => {
    const dir = tmpDir('from-stage');
    const file = path.join(dir, 'bad.yaml');
    writeFileSync(file, `name: bad\nteacher: { kind: face-api-resnet34 }\nstudent: { kind: conv-student }\ndata: { kind: sample-faces }\n` +
      `stages:\n  - name: a\n    steps: 1\n    strategy: { kind: feature-kd }\n  - name: b\n    steps: 1\n    teacher: { kind: from-stage, stage: c }\n    strategy: { kind: feature-kd }\n`);
    const r = runCli(['plan', file]);
    expect(r.status).to.equal(2);
    expect(r.stderr).to.contain(`${file}:11:41:`); // the value of stage:
    expect(r.stderr).to.contain('stages[1].teacher.stage: "c" is not an earlier stage; earlier stages: a');
  });

  it('a folder with a truncated JPEG, a zero-byte file and a text file named .jpg trains to the end and reports the three', () => {
    return (async () => {
      const f = await fixture();
      const good = readFileSync(path.join(f.faces, readdirSync(f.faces)[0]!, readdirSync(path.join(f.faces, readdirSync(f.faces)[0]!))[0]!));
      const broken = path.join(f.faces, 'Broken');
      mkdirSync(broken);
      writeFileSync(path.join(broken, 'truncated.jpg'), good.subarray(0, Math.floor(good.length / 3)));
      writeFileSync(path.join(broken, 'empty.jpg'), '');
      writeFileSync(path.join(broken, 'notes.jpg'), 'this is not an image\n');
      const file = path.join(f.dir, 'broken.yaml');
      writeFileSync(file, recipeText(f, { name: 'broken', strategy: '{ kind: feature-kd }', steps: 6, checkpointEvery: 3, eval: true }));
      const r = runCli(['run', file, '--quiet']);
      expect(r.status, r.stderr).to.equal(0);
      const report = readFileSync(path.join(f.dir, 'runs', 'broken', 'report.md'), 'utf8');
      expect(report).to.match(/3 skipped/);
      for (const name of ['Broken/truncated.jpg', 'Broken/empty.jpg', 'Broken/notes.jpg']) expect(report).to.contain(`skipped \`${name}\``);
      expect(readMetrics(path.join(f.dir, 'runs', 'broken')).filter((m) => m.step !== undefined).length).to.equal(6);
    })();
  });
});
