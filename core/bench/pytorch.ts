/** The PyTorch side of the bench: core/bench/torch_step.py under /usr/bin/python3, when that Python has torch. */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface TorchTiming {
  readonly torch: string;
  readonly threads: number;
  readonly size: number;
  readonly batch: number;
  readonly params: number;
  readonly stepSec: readonly number[];
  readonly medianStepSec: number;
  readonly imagesPerSec: number;
}

const PYTHON = process.env.FACEDISTILL_BENCH_PYTHON ?? '/usr/bin/python3';

/** The script sits beside this module's source: <root>/core/bench/torch_step.py (this file runs from dist/). */
function script(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++, dir = path.dirname(dir)) {
    const p = path.join(dir, 'core', 'bench', 'torch_step.py');
    if (fs.existsSync(p)) return p;
  }
  throw new Error('core/bench/torch_step.py not found');
}

/** Why PyTorch cannot be timed here, or undefined when it can. */
export function torchMissing(): string | undefined {
  if (!fs.existsSync(PYTHON)) return `${PYTHON} not found`;
  const r = spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8' });
  return r.status === 0 ? undefined : `${PYTHON} has no torch (apt-get install -y python3-torch)`;
}

export function timeTorchStep(o: { size: number; batch: number; threads: number; steps: number; warmup: number }): TorchTiming {
  const r = spawnSync(PYTHON, [script(), ...[o.size, o.batch, o.threads, o.steps, o.warmup].map(String)], { encoding: 'utf8', maxBuffer: 1 << 20 });
  if (r.status !== 0) throw new Error(`torch_step.py failed (${r.status}): ${r.stderr.trim().split('\n').at(-1)}`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as TorchTiming;
}
