import { createRequire } from 'node:module';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import type { BackendName } from '../recipe/schema.js';
import type { Logger } from '../util/logger.js';
import { registerWasmGradKernels } from './wasm-grad-kernels.js';

const require = createRequire(import.meta.url);

export interface BackendChoice {
  /** tfjs backend name actually active. */
  readonly name: string;
  /** npm package that provides it. */
  readonly pkg: string;
  /** Why this one: printed by every run and written to the manifest. */
  readonly reason: string;
}

let nativeTried: { ok: boolean; pkg?: string; why: string } | undefined;

/** tfjs-node(-gpu) are optional: their install downloads libtensorflow. Catch any load error. */
async function tryNative(): Promise<{ ok: boolean; pkg?: string; why: string }> {
  if (nativeTried) return nativeTried;
  const why: string[] = [];
  for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    try {
      await import(pkg);
      if (tf.findBackend('tensorflow')) return (nativeTried = { ok: true, pkg, why: `${pkg} loaded` });
      why.push(`${pkg} loaded but registered no "tensorflow" backend`);
    } catch (e) {
      why.push(`${pkg} unavailable (${(e as NodeJS.ErrnoException).code ?? (e as Error).message.split('\n')[0]})`);
    }
  }
  return (nativeTried = { ok: false, why: why.join('; ') });
}

let wasmReady = false;
async function useWasm(): Promise<void> {
  if (!wasmReady) {
    setWasmPaths(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')) + '/dist/');
    registerWasmGradKernels();
    wasmReady = true;
  }
  if (!(await tf.setBackend('wasm'))) throw new Error('the wasm backend failed to initialise');
}

/** Picks and activates a backend. `auto`: tensorflow (native) if installed, else wasm, else cpu. */
export async function selectBackend(pref: BackendName, log?: Logger): Promise<BackendChoice> {
  let choice: BackendChoice;
  if (pref === 'tensorflow') {
    const n = await tryNative();
    if (!n.ok) throw new Error(`backend "tensorflow" requested but ${n.why}; install @tensorflow/tfjs-node or -gpu, or use backend: auto`);
    await tf.setBackend('tensorflow');
    choice = { name: 'tensorflow', pkg: n.pkg!, reason: 'requested in the recipe' };
  } else if (pref === 'wasm') {
    await useWasm();
    choice = { name: 'wasm', pkg: '@tensorflow/tfjs-backend-wasm', reason: 'requested in the recipe' };
  } else if (pref === 'cpu') {
    await tf.setBackend('cpu');
    choice = { name: 'cpu', pkg: '@tensorflow/tfjs', reason: 'requested in the recipe' };
  } else {
    const n = await tryNative();
    if (n.ok) {
      await tf.setBackend('tensorflow');
      choice = { name: 'tensorflow', pkg: n.pkg!, reason: `auto: native TensorFlow is the fastest present (${n.why})` };
    } else {
      try {
        await useWasm();
        choice = { name: 'wasm', pkg: '@tensorflow/tfjs-backend-wasm', reason: `auto: ${n.why}; wasm (XNNPACK, SIMD) with facedistill's gradient kernels is the fastest left` };
      } catch (e) {
        await tf.setBackend('cpu');
        choice = { name: 'cpu', pkg: '@tensorflow/tfjs', reason: `auto: ${n.why}; wasm failed (${(e as Error).message}); pure-JS cpu is the last resort` };
      }
    }
  }
  await tf.ready();
  log?.info(`backend: ${choice.name} (${choice.pkg}) — ${choice.reason}`);
  return choice;
}
