/**
 * The `cpu-native` backend: tfjs's pure-JS cpu backend (same storage, same kernels) with the hot training kernels
 * replaced by facedistill's native addon (multi-threaded, SIMD; built on first use from core/native/fd_kernels.cc).
 * Every kernel the addon does not cover, and every case a native kernel declines, runs the cpu reference kernel.
 */
import os from 'node:os';
import * as tf from '@tensorflow/tfjs';
import { installFusedBatchNormTraining } from '../batchnorm-training.js';
import { installFusedGradients } from '../fused-gradients.js';
import { type AddonResult, loadNativeKernels } from './addon.js';
import { BufferPool, type PooledStorage } from './buffer-pool.js';
import { nativeKernelConfigs } from './kernels.js';
import { countUncovered } from './stats.js';

export { nativeFallbackWarnings, nativeKernelStats, resetNativeKernelStats, type NativeKernelStats } from './stats.js';

export const NATIVE_BACKEND = 'cpu-native';

let registered: AddonResult | undefined;
let bufferPool: BufferPool | undefined;

/** The output-buffer pool of `cpu-native` (undefined until the backend is registered). */
export const nativeBufferPool = (): BufferPool | undefined => bufferPool;

/** Registers `cpu-native` (once). Returns why not when the addon cannot be built or loaded. */
export function registerNativeBackend(): AddonResult {
  if (registered) return registered;
  const addon = loadNativeKernels();
  if (!addon.ok) return (registered = addon);
  const cpuFactory = tf.findBackendFactory('cpu');
  if (!cpuFactory) return (registered = { ok: false, why: 'the tfjs cpu backend is not registered' });
  // Priority below every built-in: `cpu-native` is chosen by selectBackend, never implicitly by tfjs.
  const pool = (bufferPool = new BufferPool(poolCapBytes()));
  tf.registerBackend(NATIVE_BACKEND, () => {
    const b = cpuFactory();
    pool.attach(b as unknown as PooledStorage);
    return b;
  }, -100);
  const cpuKernels = new Map(tf.getKernelsForBackend('cpu').map((k) => [k.kernelName, k]));
  // Every cpu kernel, counted (and reported once when a call is slow); the native ones replace some of them below.
  for (const k of cpuKernels.values()) {
    const f = k.kernelFunc;
    tf.registerKernel({
      ...k, backendName: NATIVE_BACKEND,
      kernelFunc: (args) => {
        const t0 = performance.now();
        const r = f(args);
        countUncovered(k.kernelName, performance.now() - t0, () => Object.values(args.inputs).map((t) => JSON.stringify(t?.shape)).join(' ') || 'no inputs');
        return r;
      },
    });
  }
  const reference = (name: string) => {
    const k = cpuKernels.get(name);
    if (!k) throw new Error(`cpu-native: no cpu reference kernel ${name}`);
    return k.kernelFunc;
  };
  for (const k of nativeKernelConfigs(addon.kernels, NATIVE_BACKEND, reference, pool)) {
    if (cpuKernels.has(k.kernelName)) tf.unregisterKernel(k.kernelName, NATIVE_BACKEND);
    tf.registerKernel(k);
  }
  installFusedGradients();
  installFusedBatchNormTraining();
  return (registered = addon);
}

/**
 * The most bytes of disposed outputs kept for reuse: FACEDISTILL_POOL_MB, else a quarter of the RAM. A training step
 * reuses what the previous one freed, so the pool settles near what one step frees (2.5 GB for a 112 px MobileFaceNet
 * at batch 32); with a 1 GiB cap that step ran at 865 ms instead of 523 ms.
 */
function poolCapBytes(): number {
  const v = process.env.FACEDISTILL_POOL_MB, mb = Number(v);
  if (v && Number.isFinite(mb) && mb >= 0) return mb * 2 ** 20;
  return os.totalmem() / 4;
}
