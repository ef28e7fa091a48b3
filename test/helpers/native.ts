import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { registerNativeBackend } from '../../core/backends/native/backend.js';

/**
 * Mocha hooks for a suite about `cpu-native`: the suite is skipped, saying why, only where the addon cannot be built at
 * all (no compiler, no headers, disabled); a compile or load error on a machine with a toolchain fails it. The backend
 * in use before it is restored after it. Call inside `describe`.
 */
export function useNativeBackend(): void {
  let previous = '';
  before(function () {
    const r = registerNativeBackend();
    if (!r.ok && /^(no C\+\+ compiler|Node's N-API headers|disabled by|native kernels are built)/.test(r.why)) {
      console.log(`      (skipped: the native addon is unavailable here: ${r.why})`);
      this.skip();
    }
    expect(r.ok, r.ok ? '' : r.why).to.equal(true);
    previous = tf.getBackend();
  });
  after(async () => { if (previous) await tf.setBackend(previous); });
}
