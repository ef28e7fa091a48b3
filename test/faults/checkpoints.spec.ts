// Fault injection on checkpoints and metrics.jsonl: every case runs the real CLI in a child
// process, damages or interrupts it the way a kill, a full disk or a careless hand would, resumes,
// and compares with an uninterrupted run of the same recipe (same seed: bit-identical results).
import { chmodSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync, appendFileSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { FAULT_POINTS } from '../../core/engine/fault-points.js';
import { runCli, runCliAsync } from '../helpers/cli.js';
import { makeIdentityFolder, makeTinyTeacher, tmpDir, writePairsFile } from '../helpers/fixtures.js';

const PLUGIN = path.resolve('dist/test/fixtures/test-strategies.js');
const STEPS = 30, EVERY = 10;

interface Fixture { dir: string; faces: string; teacher: string; pairs: string }

async function fixture(): Promise<Fixture> {
  const dir = tmpDir('faults');
  return {
    dir,
    faces: await makeIdentityFolder(path.join(dir, 'faces'), 4, 4, 32),
    teacher: await makeTinyTeacher(path.join(dir, 'teacher'), 24, 32),
    pairs: writePairsFile(path.join(dir, 'pairs.txt'), 4, 4),
  };
}

/** The same recipe (same hash) in any runs folder: runsDir is not part of the hash. */
function writeRecipe(f: Fixture, runsDir: string, o: { strategy?: string; steps?: number } = {}): string {
  const file = path.join(runsDir, 'recipe.yaml');
  mkdirSync(runsDir, { recursive: true });
  writeFileSync(file, `name: r
seed: 3
backend: cpu
runsDir: ${runsDir}
plugins: [${PLUGIN}]
teacher: { kind: layers-model, path: ${f.teacher} }
student: { kind: conv-student, inputSize: 16, widths: [8, 16], embeddingDim: 16 }
data: { kind: image-folder, root: ${f.faces}, size: 32 }
eval:
  pairs: { kind: lfw-pairs, root: ${f.faces}, pairsFile: ${f.pairs}, size: 32 }
  flip: true
stages:
  - name: train
    strategy: ${o.strategy ?? '{ kind: test-kill-feature-kd }'}
    steps: ${o.steps ?? STEPS}
    batchSize: 4
    optimizer: { kind: adam, lr: 0.01 }
    schedule: { kind: cosine, warmupSteps: 3 }
    checkpointEvery: ${EVERY}
`);
  return file;
}

const runDir = (runsDir: string) => path.join(runsDir, 'r');
const ckDir = (runsDir: string) => path.join(runDir(runsDir), 'checkpoints');
const checkpointsOf = (runsDir: string) => readdirSync(ckDir(runsDir)).filter((d) => /^\d\d-/.test(d)).sort();
const metricsOf = (runsDir: string) => readFileSync(path.join(runDir(runsDir), 'metrics.jsonl'), 'utf8').trim().split('\n')
  .map((l) => JSON.parse(l) as Record<string, unknown>).map(({ imagesPerSec: _i, elapsedSec: _e, ...r }) => r);
function evalOf(runsDir: string): unknown {
  const e = JSON.parse(readFileSync(path.join(runDir(runsDir), 'eval.json'), 'utf8'));
  delete e.teacher.imagesPerSec; delete e.student.imagesPerSec;
  return e;
}

describe('faults: checkpoints and metrics.jsonl', function () {
  this.timeout(600_000);
  let f: Fixture;
  let straight: string;
  /** A run killed at step 27: checkpoints at steps 10 and 20 are on disk (two are kept). */
  let killed: string;

  before(async () => {
    f = await fixture();
    straight = path.join(f.dir, 'straight');
    const r = runCli(['run', writeRecipe(f, straight), '--quiet']);
    expect(r.status, r.stderr).to.equal(0);
    killed = path.join(f.dir, 'killed');
    const k = await runCliAsync(['run', writeRecipe(f, killed), '--quiet'], { env: { FACEDISTILL_TEST_KILL_AT: '27' } });
    expect(k.signal).to.equal('SIGKILL');
    expect(checkpointsOf(killed)).to.deep.equal(['00-train-0000010', '00-train-0000020']);
  });

  /** A copy of the killed run, damaged by `damage`, then resumed; returns the resume's result. */
  function resumeAfter(tag: string, damage: (ck: string, latest: string) => void) {
    const runs = path.join(f.dir, tag);
    cpSync(killed, runs, { recursive: true });
    const recipe = writeRecipe(f, runs);
    damage(path.join(ckDir(runs), '00-train-0000020'), path.join(ckDir(runs), 'latest.json'));
    return { runs, res: runCli(['run', recipe, '--resume', '--quiet']) };
  }

  const damages: Record<string, (ck: string, latest: string) => void> = {
    'tensors.bin overwritten with zeros of the same size': (ck) => { const n = readFileSync(path.join(ck, 'tensors.bin')).length; writeFileSync(path.join(ck, 'tensors.bin'), Buffer.alloc(n)); },
    'tensors.bin overwritten with random bytes': (ck) => { const b = readFileSync(path.join(ck, 'tensors.bin')); for (let i = 0; i < b.length; i++) b[i] = (i * 2654435761) >>> 24; writeFileSync(path.join(ck, 'tensors.bin'), b); },
    'tensors.bin truncated': (ck) => truncateSync(path.join(ck, 'tensors.bin'), 100),
    'state.json garbage': (ck) => writeFileSync(path.join(ck, 'state.json'), '{"step": 20, "tens'),
    'manifest.json garbage': (ck) => writeFileSync(path.join(ck, 'manifest.json'), 'not json'),
    'tensors.bin deleted': (ck) => rmSync(path.join(ck, 'tensors.bin')),
    'the checkpoint folder deleted': (ck) => rmSync(ck, { recursive: true }),
    'latest.json garbage (the newest checkpoint is intact)': (_ck, latest) => writeFileSync(latest, '{"checkpoint": '),
  };

  for (const [what, damage] of Object.entries(damages)) {
    it(`latest checkpoint damaged — ${what}: resumes from the newest good one and ends exactly like an uninterrupted run`, () => {
      const { runs, res } = resumeAfter(what.replace(/\W+/g, '-'), damage);
      expect(res.status, res.stderr).to.equal(0);
      expect(res.stderr).to.not.match(/\n\s+at /, 'no stack trace');
      if (!what.startsWith('latest.json') && !what.startsWith('the checkpoint folder')) expect(res.stderr).to.match(/checkpoint 00-train-0000020: .*skipped, resuming from an earlier checkpoint/);
      expect(evalOf(runs)).to.deep.equal(evalOf(straight));
      expect(metricsOf(runs)).to.deep.equal(metricsOf(straight));
    });
  }

  it('no checkpoint can be trusted: exit 3, one line that names each and offers --fresh; nothing is overwritten', () => {
    const { runs, res } = resumeAfter('all-bad', (ck) => {
      writeFileSync(path.join(ck, 'state.json'), 'x');
      writeFileSync(path.join(path.dirname(ck), '00-train-0000010', 'tensors.bin'), 'x');
    });
    expect(res.status).to.equal(3);
    expect(res.stderr).to.match(/no checkpoint in .* can be trusted \(checkpoint 00-train-0000020: state.json .*; checkpoint 00-train-0000010: tensors.bin .*\); run again with --fresh/);
    expect(res.stderr).to.not.match(/\n\s+at /);
    expect(existsSync(path.join(runDir(runs), 'student'))).to.equal(false);
  });

  for (const point of FAULT_POINTS) {
    it(`killed at ${point} (step 20), resumed: the same metrics.jsonl and eval.json as an uninterrupted run`, async () => {
      const runs = path.join(f.dir, `kill-${point.replace(/\W+/g, '-')}`);
      const recipe = writeRecipe(f, runs);
      const k = await runCliAsync(['run', recipe, '--quiet'], { env: { FACEDISTILL_FAULT: `${point}@20` } });
      expect(k.signal, k.stderr).to.equal('SIGKILL');
      const res = runCli(['run', recipe, '--resume', '--quiet']);
      expect(res.status, res.stderr).to.equal(0);
      expect(metricsOf(runs)).to.deep.equal(metricsOf(straight));
      expect(evalOf(runs)).to.deep.equal(evalOf(straight));
    });
  }

  it('the disk fills while a checkpoint is written: exit 3 with one line saying so; --resume later ends like an uninterrupted run', () => {
    const runs = path.join(f.dir, 'full-disk');
    const recipe = writeRecipe(f, runs);
    const full = runCli(['run', recipe, '--quiet'], { env: { FACEDISTILL_FAULT: 'checkpoint:tensors-written@20:enospc' } });
    expect(full.status).to.equal(3);
    expect(full.stderr.trim().split('\n').at(-1)).to.match(/^error: cannot write the checkpoint of step 20 \(ENOSPC: no space left on device.*\); the previous checkpoint is intact: .*--resume$/);
    expect(JSON.parse(readFileSync(path.join(runDir(runs), 'manifest.json'), 'utf8')).status).to.equal('failed');
    const res = runCli(['run', recipe, '--resume', '--quiet']);
    expect(res.status, res.stderr).to.equal(0);
    expect(metricsOf(runs)).to.deep.equal(metricsOf(straight));
    expect(evalOf(runs)).to.deep.equal(evalOf(straight));
  });

  it('a runs folder that cannot be written (not as root, which may write anywhere): exit 2 at runsDir', function () {
    if (process.getuid?.() === 0) this.skip(); // root ignores permission bits: the ENOTDIR case in recipes.spec.ts covers the path
    const ro = path.join(f.dir, 'read-only');
    mkdirSync(ro, { recursive: true });
    chmodSync(ro, 0o500);
    try {
      const res = runCli(['run', writeRecipe(f, path.join(f.dir, 'rw')), '--quiet', '--set', `runsDir=${path.join(ro, 'runs')}`]);
      expect(res.status).to.equal(2);
      expect(res.stderr).to.match(/runsDir: cannot write under .*read-only\/runs \(EACCES: permission denied\)/);
    } finally {
      chmodSync(ro, 0o700);
    }
  });

  it('a torn last line of metrics.jsonl is dropped on resume (and said), not a SyntaxError', () => {
    const { runs, res } = resumeAfter('torn-metrics', (ck) => appendFileSync(path.join(path.dirname(path.dirname(ck)), 'metrics.jsonl'), '{"stage":"train","step":2'));
    expect(res.status, res.stderr).to.equal(0);
    expect(res.stderr).to.contain('dropped 1 line(s) that were not JSON');
    expect(metricsOf(runs)).to.deep.equal(metricsOf(straight));
  });

  it('repeated rollbacks to one checkpoint halve the learning rate each time (0.5, then 0.25)', () => {
    const runs = path.join(f.dir, 'nan');
    const res = runCli(['run', writeRecipe(f, runs, { strategy: '{ kind: test-nan, nanAt: [14], times: 2 }', steps: 20 }), '--quiet']);
    expect(res.status, res.stderr).to.equal(0);
    const rows = readFileSync(path.join(runDir(runs), 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(rows.filter((r) => r.event === 'rollback').map((r) => [r.toStep, r.lrScale])).to.deep.equal([[10, 0.5], [10, 0.25]]);
    const lr11 = rows.filter((r) => r.event === undefined && r.step === 11).map((r) => r.lr as number);
    expect(lr11).to.have.length(3);
    expect(lr11[1]! / lr11[0]!).to.be.closeTo(0.5, 1e-12);
    expect(lr11[2]! / lr11[0]!).to.be.closeTo(0.25, 1e-12);
  });

  it('two runs of one recipe at once: one proceeds, the other exits 3 naming the holder; one metrics row per step', async () => {
    const runs = path.join(f.dir, 'twice');
    const recipe = writeRecipe(f, runs, { steps: 120 });
    const first = runCliAsync(['run', recipe, '--quiet']);
    const lock = path.join(runs, '.locks', 'r.lock');
    for (let i = 0; i < 600 && !existsSync(lock); i++) await new Promise((r) => setTimeout(r, 50));
    expect(existsSync(lock), 'the first run holds the lock').to.equal(true);
    const holder = JSON.parse(readFileSync(lock, 'utf8')) as { pid: number };
    const second = runCli(['run', recipe, '--quiet']);
    expect(second.status).to.equal(3);
    expect(second.stderr).to.match(new RegExp(`is in use: facedistill run r \\(pid ${holder.pid} on [^)]+\\) holds`));
    const a = await first;
    expect(a.code, a.stderr).to.equal(0);
    const steps = readFileSync(path.join(runDir(runs), 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { step: number; event?: string }).filter((r) => r.event === undefined).map((r) => r.step);
    expect(steps).to.deep.equal(Array.from({ length: 120 }, (_, i) => i + 1));
    expect(existsSync(lock), 'released at the end').to.equal(false);
  });

  it('a lock left by a process that died (same host, pid gone) is taken over', () => {
    const runs = path.join(f.dir, 'stale');
    const recipe = writeRecipe(f, runs, { steps: 5 });
    mkdirSync(path.join(runs, '.locks'), { recursive: true });
    // A pid that cannot be running: above the kernel's pid_max (at most 2^22).
    writeFileSync(path.join(runs, '.locks', 'r.lock'), JSON.stringify({ pid: 99_999_999, host: hostname(), startedAt: '2026-01-01T00:00:00Z', what: 'facedistill run r' }));
    const res = runCli(['run', recipe, '--quiet']);
    expect(res.status, res.stderr).to.equal(0);
    expect(existsSync(path.join(runs, '.locks', 'r.lock'))).to.equal(false);
  });
});
