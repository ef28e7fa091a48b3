import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { runCli, runCliAsync } from '../helpers/cli.js';
import { makeIdentityFolder, makeTinyTeacher, tmpDir } from '../helpers/fixtures.js';

const PLUGIN = path.resolve('dist/test/fixtures/test-strategies.js');

function readMetrics(dir: string): Record<string, unknown>[] {
  return readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
}

// ekd keeps its anchors and counters in state(), grouped-kd its fitted teacher head and
// the ramp's step count: a run killed mid-stage and resumed must log exactly what an
// uninterrupted run logs and end with the same student.
describe('label-based strategies: SIGKILL + --resume', function () {
  this.timeout(600_000);
  let f: { dir: string; faces: string; teacher: string };
  before(async () => {
    const dir = tmpDir('label-resume');
    f = { dir, faces: await makeIdentityFolder(path.join(dir, 'faces'), 4, 4, 32), teacher: await makeTinyTeacher(path.join(dir, 'teacher'), 24, 32) };
  });

  const recipe = (name: string, strategy: string, steps: number, optimizer: string, sampler: string) => `name: ${name}
seed: 3
backend: cpu
runsDir: ${path.join(f.dir, 'runs')}
plugins: [${PLUGIN}]
teacher: { kind: layers-model, path: ${f.teacher} }
student: { kind: conv-student, inputSize: 16, widths: [8, 16], embeddingDim: 16 }
data: { kind: image-folder, root: ${f.faces}, size: 32, sampler: ${sampler} }
stages:
  - name: train
    strategy: { kind: test-kill, inner: ${strategy} }
    steps: ${steps}
    batchSize: 8
    optimizer: ${optimizer}
    checkpointEvery: 5
`;

  // tfjs's Adam.setWeights recomputes β^t with pow() where a straight run multiplies step by
  // step, which differs in the last float32 bit at some t (β2 = 0.999, t = 6); the checkpoint
  // keeps the exact products (optimizerScalars). grouped-kd resumes Adam from step 5, where
  // pow() alone would differ.
  const cases = [
    { key: 'ekd', strategy: '{ kind: ekd, anchorInit: firstBatch, generalFraction: 0.5 }', sampler: '{ kind: general-plus-pk, identities: 2, perIdentity: 2 }', optimizer: '{ kind: adam, lr: 0.01 }', steps: 16, killAt: 12, check: (rows: Record<string, unknown>[]) => { expect(rows.every((r) => r.ekdEmptyPositives === 0), 'P×K half: positives in every batch').to.equal(true); expect(rows.filter((r) => (r.ekd as number) > 1e-4).length, 'firstBatch anchors: the EKD term is active').to.be.above(8); } },
    { key: 'grouped-kd', strategy: '{ kind: grouped-kd, teacherHead: { steps: 4 }, stepsPerEpoch: 2, warmupEpochs: 3, groupSize: 2 }', sampler: '{ kind: uniform }', optimizer: '{ kind: adam, lr: 0.01 }', steps: 12, killAt: 7,
      check: (rows: Record<string, unknown>[]) => expect(rows.map((r) => r.ramp)).to.deep.equal([0, 0, 1 / 3, 1 / 3, 2 / 3, 2 / 3, 1, 1, 1, 1, 1, 1]) },
  ];
  for (const c of cases) {
    it(`${c.key}: killed at step ${c.killAt} and resumed, logs and weights equal an uninterrupted run`, async () => {
      const a = path.join(f.dir, `${c.key}-a.yaml`), b = path.join(f.dir, `${c.key}-b.yaml`);
      writeFileSync(a, recipe(`${c.key}-straight`, c.strategy, c.steps, c.optimizer, c.sampler));
      writeFileSync(b, recipe(`${c.key}-killed`, c.strategy, c.steps, c.optimizer, c.sampler));
      const straight = runCli(['run', a, '--quiet']);
      expect(straight.status, straight.stderr).to.equal(0);
      const killed = await runCliAsync(['run', b, '--quiet'], { env: { FACEDISTILL_TEST_KILL_AT: String(c.killAt) } });
      expect(killed.signal).to.equal('SIGKILL');
      const runA = path.join(f.dir, 'runs', `${c.key}-straight`), runB = path.join(f.dir, 'runs', `${c.key}-killed`);
      expect(existsSync(path.join(runB, 'student', 'weights.bin'))).to.equal(false);
      const resumed = runCli(['run', b, '--resume', '--quiet']);
      expect(resumed.status, resumed.stderr).to.equal(0);
      const strip = (rows: Record<string, unknown>[]) => rows.map(({ imagesPerSec: _i, elapsedSec: _e, ...r }) => r);
      const ma = strip(readMetrics(runA)), mb = strip(readMetrics(runB));
      expect(mb).to.deep.equal(ma);
      const steps = ma.filter((r) => r.event === undefined);
      expect(steps).to.have.length(c.steps);
      c.check(steps);
      expect(readFileSync(path.join(runB, 'student', 'weights.bin')).equals(readFileSync(path.join(runA, 'student', 'weights.bin')))).to.equal(true);
    });
  }
});
