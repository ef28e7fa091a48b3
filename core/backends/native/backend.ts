/**
 * The `cpu-native` backend: tfjs's pure-JS cpu backend (same storage, same kernels) with the hot training kernels
 * replaced by facedistill's native addon (multi-threaded, SIMD; built on first use from core/native/fd_kernels.cc).
 * Every kernel the addon does not cover, and every case a native kernel declines, runs the cpu reference kernel.
 */
import * as tf from '@tensorflow/tfjs';
import { installFusedBatchNormTraining } from '../batchnorm-training.js';
import { installFusedGradients } from '../fused-gradients.js';
import { type AddonResult, loadNativeKernels } from './addon.js';
import { nativeKernelConfigs } from './kernels.js';

export const NATIVE_BACKEND = 'cpu-native';

let registered: AddonResult | undefined;

/** Registers `cpu-native` (once). Returns why not when the addon cannot be built or loaded. */
export function registerNativeBackend(): AddonResult {
  if (registered) return registered;
  const addon = loadNativeKernels();
  if (!addon.ok) return (registered = addon);
  const cpuFactory = tf.findBackendFactory('cpu');
  if (!cpuFactory) return (registered = { ok: false, why: 'the tfjs cpu backend is not registered' });
  // Priority below every built-in: `cpu-native` is chosen by selectBackend, never implicitly by tfjs.
  tf.registerBackend(NATIVE_BACKEND, cpuFactory, -100);
  const cpuKernels = new Map(tf.getKernelsForBackend('cpu').map((k) => [k.kernelName, k]));
  for (const k of cpuKernels.values()) tf.registerKernel({ ...k, backendName: NATIVE_BACKEND });
  const reference = (name: string) => {
    const k = cpuKernels.get(name);
    if (!k) throw new Error(`cpu-native: no cpu reference kernel ${name}`);
    return k.kernelFunc;
  };
  for (const k of nativeKernelConfigs(addon.kernels, NATIVE_BACKEND, reference)) {
    if (cpuKernels.has(k.kernelName)) tf.unregisterKernel(k.kernelName, NATIVE_BACKEND);
    tf.registerKernel(k);
  }
  installFusedGradients();
  installFusedBatchNormTraining();
  return (registered = addon);
}
