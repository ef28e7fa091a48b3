import { createRequire } from 'node:module';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import type { BackendName } from '../recipe/schema.js';
import type { Logger } from '../util/logger.js';
import { installFusedGradients } from './fused-gradients.js';
import { NATIVE_BACKEND, registerNativeBackend } from './native/backend.js';
import { registerTransformKernels } from './transform-kernel.js';
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
    installFusedGradients(); // BatchNorm gradient without Tile
    wasmReady = true;
  }
  if (!(await tf.setBackend('wasm'))) throw new Error('the wasm backend failed to initialise');
}

/** Registers and activates `cpu-native`; returns why not when its addon cannot be built or loaded. */
async function useNative(): Promise<{ ok: true; detail: string } | { ok: false; why: string }> {
  const r = registerNativeBackend();
  if (!r.ok) return r;
  if (!(await tf.setBackend(NATIVE_BACKEND))) return { ok: false, why: 'the cpu-native backend failed to initialise' };
  return { ok: true, detail: `${r.built ? 'built now' : 'cached build'}: ${r.detail}` };
}

/**
 * Picks and activates a backend. `auto`: tensorflow (native TF) if installed, else cpu-native (facedistill's own
 * kernels, compiled on this machine), else wasm, else cpu.
 */
export async function selectBackend(pref: BackendName, log?: Logger): Promise<BackendChoice> {
  let choice: BackendChoice;
  if (pref === 'tensorflow') {
    const n = await tryNative();
    if (!n.ok) throw new Error(`backend "tensorflow" requested but ${n.why}; install @tensorflow/tfjs-node or -gpu, or use backend: auto`);
    await tf.setBackend('tensorflow');
    choice = { name: 'tensorflow', pkg: n.pkg!, reason: 'requested in the recipe' };
  } else if (pref === 'cpu-native') {
    const n = await useNative();
    if (!n.ok) throw new Error(`backend "cpu-native" requested but ${n.why}; use backend: auto to fall back to wasm`);
    choice = { name: NATIVE_BACKEND, pkg: 'facedistill core/native (C++ addon)', reason: `requested in the recipe (${n.detail})` };
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
      const nat = await useNative();
      if (nat.ok) {
        choice = { name: NATIVE_BACKEND, pkg: 'facedistill core/native (C++ addon)', reason: `auto: ${n.why}; cpu-native (facedistill's multi-threaded SIMD kernels, ${nat.detail}) is the fastest left` };
      } else try {
        await useWasm();
        choice = { name: 'wasm', pkg: '@tensorflow/tfjs-backend-wasm', reason: `auto: ${n.why}; cpu-native unavailable (${nat.why}); wasm (XNNPACK, SIMD) with facedistill's gradient kernels is the fastest left` };
      } catch (e) {
        await tf.setBackend('cpu');
        choice = { name: 'cpu', pkg: '@tensorflow/tfjs', reason: `auto: ${n.why}; wasm failed (${(e as Error).message}); pure-JS cpu is the last resort` };
      }
    }
  }
  registerTransformKernels();
  await tf.ready();
  log?.info(`backend: ${choice.name} (${choice.pkg}) — ${choice.reason}`);
  return choice;
}
