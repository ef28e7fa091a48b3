import * as tf from '@tensorflow/tfjs';
import { registerNativeBackend } from '../../core/backends/native/backend.js';

/**
 * Mocha hooks for a suite about `cpu-native`: the suite is skipped where the addon cannot be built (no compiler), and
 * the backend in use before it is restored after it. Call inside `describe`.
 */
export function useNativeBackend(): void {
  let previous = '';
  before(function () {
    if (!registerNativeBackend().ok) this.skip();
    previous = tf.getBackend();
  });
  after(async () => { if (previous) await tf.setBackend(previous); });
}
