/**
 * `npm run bench [-- --json] [--steps N] [--warmup N] [--backends a,b] [--tasks t,u] [--cpu-students] [--no-torch]`
 *
 * Times, in one process run, on every backend present: the KD student step (MobileFaceNet at 112 px, effective batch
 * 32; the same net at 32 px, batch 32, standing in for the small student until `bridge-tiny` lands), the teacher's
 * inference (face-api ResNet-34, batch 32), the SE-MobileFaceNet graph teacher (batch 32 and 64, and at batch 32 with
 * its conv + bias + activation chains fused at load; skipped when ../shared/models lacks it), face-api's 68-point
 * landmark net (batch 32), the five-point LFW evaluation end to end (cold: decode, landmarks, align, flip-embed; images
 * per second, each image once) and, on cpu-native only, the 112 px step at batch 64 and 128; and, when /usr/bin/python3 has torch, the same 112 px and 32 px steps in
 * PyTorch (2 threads, batch 32). Medians of --steps steps after --warmup. `ratioToPytorch` = the fast path's (the
 * backend `auto` picks) 112 px images/s ÷ PyTorch's, both measured in this run. A benchmark, not a test: the machine's
 * load is printed with every number because it moves them.
 */
import os from 'node:os';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../backends/select.js';
import { BACKENDS, type BackendName } from '../recipe/schema.js';
import { timeTorchStep, torchMissing, type TorchTiming } from './pytorch.js';
import { lfwMissing, seMobileFaceNetMissing, timeGraphTeacher, timeLandmarks, timeLfwFivePoint, timeStudentStep, timeTeacher, type Timing } from './workloads.js';

type Task = 'student112' | 'student32' | 'teacher' | 'student112-b64' | 'student112-b128' | 'se-teacher' | 'se-teacher-b64' | 'se-teacher-fused' | 'landmarks' | 'lfw-five-point';
const TASKS: readonly Task[] = ['student112', 'student32', 'teacher', 'student112-b64', 'student112-b128', 'se-teacher', 'se-teacher-b64', 'se-teacher-fused', 'landmarks', 'lfw-five-point'];
/** Batch per task (the pure-JS cpu backend runs the inference tasks at batch 8). */
const TASK_BATCH: Record<Task, number> = {
  student112: 32, student32: 32, teacher: 32, 'student112-b64': 64, 'student112-b128': 128,
  'se-teacher': 32, 'se-teacher-b64': 64, 'se-teacher-fused': 32, landmarks: 32, 'lfw-five-point': 32,
};
const INFERENCE: ReadonlySet<Task> = new Set(['teacher', 'se-teacher', 'se-teacher-b64', 'se-teacher-fused', 'landmarks', 'lfw-five-point']);
/** Tasks timed on cpu-native only: minutes per step on wasm (4 GiB heap: 16-image micro-batches) and pure JS. */
const NATIVE_ONLY: ReadonlySet<Task> = new Set(['student112-b64', 'student112-b128']);

interface Row {
  readonly backend: string;
  readonly task: Task | 'skipped';
  readonly what: string;
  readonly timing?: Timing | TorchTiming;
  readonly microBatch?: number;
  readonly load1: readonly [number, number];
  readonly note?: string;
}

function parseArgs(argv: string[]) {
  const get = (k: string) => { const i = argv.indexOf(k); return i >= 0 ? argv[i + 1] : undefined; };
  const list = (k: string) => get(k)?.split(',').map((s) => s.trim()).filter(Boolean);
  return {
    json: argv.includes('--json'),
    steps: Number(get('--steps') ?? 5),
    warmup: Number(get('--warmup') ?? 3), // the first steps fill cpu-native's buffer pool
    backends: list('--backends') as BackendName[] | undefined,
    tasks: (list('--tasks') as Task[] | undefined) ?? [...TASKS],
    cpuStudents: argv.includes('--cpu-students'),
    torch: !argv.includes('--no-torch'),
  };
}

const describeTask: Record<Task, string> = {
  student112: 'MobileFaceNet 112 px KD train step (Adam, MSE on L2-normalised 128-D)',
  student32: 'MobileFaceNet 32 px KD train step (stand-in for bridge-tiny)',
  teacher: 'face-api ResNet-34 inference (150 px)',
  'student112-b64': 'MobileFaceNet 112 px KD train step (as student112)',
  'student112-b128': 'MobileFaceNet 112 px KD train step (as student112)',
  'se-teacher': 'SE-MobileFaceNet graph as converted (conv, bias, activation as separate ops)',
  'se-teacher-b64': 'teacher inference (SE-MobileFaceNet graph as the graph-model teacher loads it: conv+bias+activation fused)',
  'se-teacher-fused': 'teacher inference (SE-MobileFaceNet graph as the graph-model teacher loads it: conv+bias+activation fused)',
  landmarks: 'landmarks (face-api 68, 112 px crops)',
  'lfw-five-point': 'LFW five-point evaluation end to end, cold (decode 250 px, landmarks, align, SE-MobileFaceNet on face + mirror)',
};

/** Micro-batch per backend for the 112 px step: wasm's 4 GiB heap holds 16 images at 112 px (backend-notes §1.2). */
const microBatch = (backend: string, task: Task) => (backend === 'wasm' && task.startsWith('student112') ? 16 : TASK_BATCH[task]);

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  const log = (m: string) => process.stderr.write(`${m}\n`);
  const rows: Row[] = [];
  const load = () => Math.round(os.loadavg()[0]! * 100) / 100;

  const auto = await selectBackend('auto');
  log(`fast path (backend: auto): ${auto.name} — ${auto.reason}`);
  const candidates = (a.backends ?? [...BACKENDS]).filter((b): b is Exclude<BackendName, 'auto'> => b !== 'auto');
  // The fast path first, right after PyTorch's steps.
  const order = [auto.name, ...candidates.filter((b) => b !== auto.name)].filter((b): b is Exclude<BackendName, 'auto'> => (candidates as string[]).includes(b));
  const torchWhy = a.torch ? torchMissing() : 'disabled by --no-torch';
  if (torchWhy) log(`PyTorch: not timed (${torchWhy})`);

  const torchRun = (size: number) => {
    const l0 = load();
    log(`  pytorch ${size} px step, batch 32, 2 threads …`);
    try {
      const t = timeTorchStep({ size, batch: 32, threads: 2, steps: a.steps, warmup: a.warmup });
      rows.push({ backend: 'pytorch', task: size === 112 ? 'student112' : 'student32', what: `PyTorch ${t.torch} CPU, ${t.threads} threads`, timing: t, load1: [l0, load()] });
    } catch (e) {
      rows.push({ backend: 'pytorch', task: 'skipped', what: `${size} px step`, load1: [l0, load()], note: (e as Error).message });
    }
  };

  // PyTorch first, while this process is still idle: timed after the tfjs runs it was ~30 % slower (this process's
  // garbage collector and gigabytes of freed buffers were still busy beside it).
  if (torchWhy === undefined) {
    for (const t of a.tasks) if (t === 'student112' || t === 'student32') torchRun(t === 'student112' ? 112 : 32);
  }
  for (const backend of order) {
    try {
      await selectBackend(backend);
    } catch (e) {
      rows.push({ backend, task: 'skipped', what: 'backend not present', load1: [load(), load()], note: (e as Error).message.split(';')[0] });
      continue;
    }
    for (const task of a.tasks) {
      if (backend === 'cpu' && !INFERENCE.has(task) && !a.cpuStudents) {
        rows.push({ backend, task: 'skipped', what: describeTask[task], load1: [load(), load()], note: 'pure-JS reference: minutes per step (backend-notes §2); --cpu-students to time it' });
        continue;
      }
      if (NATIVE_ONLY.has(task) && backend !== 'cpu-native') {
        rows.push({ backend, task: 'skipped', what: describeTask[task], load1: [load(), load()], note: `${describeTask[task]}: timed on cpu-native only (minutes per step here)` });
        continue;
      }
      const seMissing = task.startsWith('se-teacher') ? seMobileFaceNetMissing() : task === 'lfw-five-point' ? lfwMissing() : undefined;
      if (seMissing) {
        rows.push({ backend, task: 'skipped', what: describeTask[task], load1: [load(), load()], note: `${describeTask[task]}: skipped, ${seMissing}` });
        continue;
      }
      const batch = backend === 'cpu' && INFERENCE.has(task) ? 8 : TASK_BATCH[task];
      const mb = Math.min(batch, microBatch(backend, task));
      const steps = backend === 'cpu' ? Math.min(a.steps, 2) : a.steps;
      log(`  ${backend}: ${describeTask[task]}, batch ${batch}${mb < batch ? ` (${batch / mb}×${mb} accumulated)` : ''}, ${a.warmup} warm-up + ${steps} steps …`);
      const l0 = load();
      const onStep = (s: number) => log(`    ${s.toFixed(2)} s`);
      const timing = task === 'teacher' ? await timeTeacher({ batch, steps, warmup: a.warmup, onStep })
        : task.startsWith('se-teacher') ? await timeGraphTeacher({ batch, steps, warmup: a.warmup, fuse: task !== 'se-teacher', onStep })
        : task === 'landmarks' ? await timeLandmarks({ batch, steps, warmup: a.warmup, onStep })
        : task === 'lfw-five-point' ? await timeLfwFivePoint({ batch, steps, warmup: a.warmup, onStep })
        : await timeStudentStep({ inputSize: task === 'student32' ? 32 : 112, batch, microBatch: mb, steps, warmup: a.warmup, onStep });
      rows.push({ backend, task, what: describeTask[task], timing, microBatch: mb, load1: [l0, load()] });
    }
  }
  await tf.setBackend(auto.name);

  const find = (backend: string, task: Task) => rows.find((r) => r.backend === backend && r.task === task)?.timing;
  const fast = find(auto.name, 'student112');
  const torch = find('pytorch', 'student112');
  const ratio = fast && torch ? fast.imagesPerSec / torch.imagesPerSec : null;
  const machine = {
    cpu: os.cpus()[0]?.model ?? 'unknown', cores: os.cpus().length, memGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version, tfjs: tf.version.tfjs,
  };

  if (a.json) {
    process.stdout.write(JSON.stringify({
      bench: 'facedistill', machine, backend: auto.name, backendReason: auto.reason, ratioToPytorch: ratio,
      fastPath: fast && { task: 'student112', imagesPerSec: fast.imagesPerSec, medianStepSec: fast.medianStepSec, batch: fast.batch, microBatch: microBatch(auto.name, 'student112') },
      pytorch: torch ?? null,
      results: rows.map((r) => ({ backend: r.backend, task: r.task, what: r.what, microBatch: r.microBatch, load1: r.load1, note: r.note,
        ...(r.timing ? { imagesPerSec: r.timing.imagesPerSec, medianStepSec: r.timing.medianStepSec, batch: r.timing.batch, stepSec: r.timing.stepSec } : {}) })),
    }) + '\n');
    return;
  }
  const out = (s: string) => process.stdout.write(`${s}\n`);
  out(`machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memGiB} GiB, node ${machine.node}, tfjs ${machine.tfjs}`);
  out(`fast path: ${auto.name} (${auto.reason})`);
  out('');
  out(`${'backend'.padEnd(11)} ${'task'.padEnd(16)} ${'img/s'.padStart(8)} ${'s/step'.padStart(8)}  batch  load1 (before→after)  note`);
  for (const r of rows) {
    const t = r.timing;
    const b = t ? (r.microBatch && r.microBatch < t.batch ? `${t.batch / r.microBatch}×${r.microBatch}` : String(t.batch)) : '';
    out(`${r.backend.padEnd(11)} ${r.task.padEnd(16)} ${(t ? t.imagesPerSec.toFixed(2) : '-').padStart(8)} ${(t ? t.medianStepSec.toFixed(3) : '-').padStart(8)}  ${b.padEnd(5)}  ${r.load1[0].toFixed(2)}→${r.load1[1].toFixed(2)}            ${r.note ?? r.what}`);
  }
  out('');
  out(ratio === null
    ? `ratio to PyTorch: not measured (${!fast ? 'no fast-path 112 px step timed' : torchWhy ?? 'the PyTorch 112 px step failed'})`
    : `ratio to PyTorch (112 px step, ${auto.name} ÷ PyTorch 2 threads, batch 32): ${ratio.toFixed(2)}×`);
}

main().catch((e) => {
  process.stderr.write(`bench failed: ${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
