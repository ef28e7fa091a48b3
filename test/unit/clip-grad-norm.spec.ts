import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { clipByGlobalNorm } from '../../core/engine/trainer.js';

describe('clipByGlobalNorm (torch.nn.utils.clip_grad_norm_ rule)', () => {
  it('scales all gradients by c/(‖g‖ + 1e-6) when the global norm is above c; returns them untouched otherwise', async () => {
    // ‖(3, 4, 12)‖ = 13 by hand.
    const grads = { a: tf.tensor1d([3, 4]), b: tf.tensor2d([[12]]) };
    const out = await clipByGlobalNorm(grads, 6.5);
    const coef = 6.5 / (13 + 1e-6);
    expect(Array.from(out.a!.dataSync())[0]).to.be.closeTo(3 * coef, 1e-6);
    expect(Array.from(out.a!.dataSync())[1]).to.be.closeTo(4 * coef, 1e-6);
    expect(out.b!.shape).to.deep.equal([1, 1]);
    expect(out.b!.dataSync()[0]).to.be.closeTo(12 * coef, 1e-5);
    expect(await clipByGlobalNorm(grads, 13.5)).to.equal(grads);
    expect(await clipByGlobalNorm(grads, undefined)).to.equal(grads);
    const before = tf.memory().numTensors;
    tf.dispose(Object.values(await clipByGlobalNorm(grads, 1)));
    expect(tf.memory().numTensors).to.equal(before);
    tf.dispose([...Object.values(out), ...Object.values(grads)]);
  });
});
