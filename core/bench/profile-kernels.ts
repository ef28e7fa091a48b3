/**
 * `node dist/core/bench/profile-kernels.js [--workloads teacher,landmarks,train] [--batch N] [--train-batch N]
 *   [--runs N] [--warmup N] [--fuse]`
 *
 * Per kernel name, where the time of a workload goes on `cpu-native`, and whether it ran natively or fell back to
 * tfjs's pure-JS cpu kernel (from the backend's own counters, see core/backends/native/stats.ts):
 *   teacher    the SE-MobileFaceNet ArcFace graph model (../shared/models/arcface-semobilefacenet), batch --batch (32)
 *   landmarks  face-api's 68-point landmark net on 112×112 crops, batch --batch (32)
 *   train      the bench's MobileFaceNet 112 px KD training step, batch --train-batch (64)
 * One warm-up run (not counted), then --runs counted runs (default 1). --fuse loads the teacher with its
 * Conv2D → BiasAdd → activation chains fused (core/models/graph-fusion.ts). A diagnostic, not a test.
 */
import * as tf from '@tensorflow/tfjs';
import { NATIVE_BACKEND, nativeKernelStats, registerNativeBackend, resetNativeKernelStats } from '../backends/native/backend.js';
import { graphTeacherWorkload, landmarksWorkload, seMobileFaceNetMissing, studentStepWorkload, type Workload } from './workloads.js';

function parseArgs(argv: string[]) {
  const get = (k: string) => { const i = argv.indexOf(k); return i >= 0 ? argv[i + 1] : undefined; };
  return {
    workloads: (get('--workloads') ?? 'teacher,landmarks,train').split(',').map((s) => s.trim()).filter(Boolean),
    batch: Number(get('--batch') ?? 32),
    trainBatch: Number(get('--train-batch') ?? 64),
    runs: Number(get('--runs') ?? 1),
    warmup: Number(get('--warmup') ?? 1),
    fuse: argv.includes('--fuse'),
  };
}

const log = (m: string) => process.stdout.write(`${m}\n`);

async function profile(name: string, make: () => Promise<Workload>, runs: number, warmup: number, images: number): Promise<void> {
  const w = await make();
  try {
    for (let i = 0; i < warmup; i++) {
      const t0 = performance.now();
      await w.once();
      log(`  ${name}: warm-up ${((performance.now() - t0) / 1000).toFixed(2)} s`);
    }
    resetNativeKernelStats();
    const t0 = performance.now();
    for (let i = 0; i < runs; i++) await w.once();
    const wall = performance.now() - t0;
    const s = nativeKernelStats();
    const names = new Set([...s.native.keys(), ...s.fallback.keys()]);
    const rows = [...names].map((k) => ({
      k, nCalls: s.native.get(k) ?? 0, fCalls: s.fallback.get(k) ?? 0, nMs: s.nativeMs.get(k) ?? 0, fMs: s.fallbackMs.get(k) ?? 0,
    })).map((r) => ({ ...r, ms: r.nMs + r.fMs })).sort((a, b) => b.ms - a.ms);
    const total = rows.reduce((a, r) => a + r.ms, 0);
    const fb = rows.reduce((a, r) => a + r.fMs, 0);
    log(`\n${name}: ${runs} run(s), ${(wall / runs / 1000).toFixed(3)} s per run, ${(images * runs / (wall / 1000)).toFixed(1)} images/s; `
      + `kernels ${(total / runs).toFixed(0)} ms per run, of which pure-JS fallbacks ${(fb / runs).toFixed(0)} ms`);
    log(`  ${'kernel'.padEnd(38)} ${'ms/run'.padStart(9)} ${'share'.padStart(6)} ${'native'.padStart(7)} ${'fallback'.padStart(8)} ${'fb ms/run'.padStart(9)}`);
    for (const r of rows) {
      if (r.ms / total < 0.002 && r.fMs < 1) continue;
      log(`  ${r.k.padEnd(38)} ${(r.ms / runs).toFixed(1).padStart(9)} ${((100 * r.ms) / total).toFixed(1).padStart(5)}% ${String(r.nCalls / runs).padStart(7)} ${String(r.fCalls / runs).padStart(8)} ${(r.fMs / runs).toFixed(1).padStart(9)}`);
    }
    if (s.reasons.size) log(`  declined cases: ${[...s.reasons].map(([k, v]) => `${k} (${v / runs}×)`).join('; ')}`);
  } finally {
    w.dispose();
  }
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  const r = registerNativeBackend();
  if (!r.ok) throw new Error(`cpu-native unavailable: ${r.why}`);
  await tf.setBackend(NATIVE_BACKEND);
  log(`backend ${tf.getBackend()} (${r.detail})`);
  for (const w of a.workloads) {
    if (w === 'teacher') {
      const why = seMobileFaceNetMissing();
      if (why) { log(`teacher: skipped: ${why}`); continue; }
      await profile(`SE-MobileFaceNet teacher${a.fuse ? ' (conv+bias+activation fused at load)' : ''}, batch ${a.batch}`,
        () => graphTeacherWorkload({ batch: a.batch, fuse: a.fuse }), a.runs, a.warmup, a.batch);
    } else if (w === 'landmarks') {
      await profile(`face-api 68-point landmarks, batch ${a.batch}`, () => landmarksWorkload({ batch: a.batch }), a.runs, a.warmup, a.batch);
    } else if (w === 'train') {
      await profile(`MobileFaceNet 112 px training step, batch ${a.trainBatch}`,
        async () => studentStepWorkload({ inputSize: 112, batch: a.trainBatch, microBatch: a.trainBatch }), a.runs, a.warmup, a.trainBatch);
    } else throw new Error(`unknown workload ${w}`);
  }
}

main().catch((e) => {
  process.stderr.write(`profile failed: ${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
