import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { featureKdLoss } from '../../strategies/feature-kd/feature-kd.js';

// Reference values from numpy (float64), independent of tfjs:
//   s = [[0.5,-1,2],[1.5,0.25,-0.75]]; t = [[1,0,1],[-0.5,2,0.5]]
//   n = lambda v: v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
//   np.mean((s-t)**2)                          -> 1.8125
//   np.sum((n(s)-n(t))**2) / (2*2)             -> 0.7011226309518848
//   cos = (s*t).sum(1) / (|s|·|t|); np.mean(1-cos) -> 0.7011226309518848
// (Σ‖n(s)−n(t)‖²/2B equals mean(1−cos) exactly, since ‖n(a)−n(b)‖² = 2 − 2cos.)
describe('feature-kd loss', () => {
  const s = () => tf.tensor2d([[0.5, -1, 2], [1.5, 0.25, -0.75]]);
  const t = () => tf.tensor2d([[1, 0, 1], [-0.5, 2, 0.5]]);
  const value = (kind: 'mse' | 'mse-normalised' | 'cosine') => tf.tidy(() => featureKdLoss(kind, s(), t()).dataSync()[0]!);

  it('mse on raw embeddings (TFace fitnet)', () => expect(value('mse')).to.be.closeTo(1.8125, 1e-6));
  it('normalised mse Σ‖n(s)−n(t)‖²/(2B) (GKD fitnet)', () => expect(value('mse-normalised')).to.be.closeTo(0.7011226309518848, 1e-6));
  it('cosine distance mean(1−cos)', () => expect(value('cosine')).to.be.closeTo(0.7011226309518848, 1e-6));

  it('gradient of the mse term is 2(s−t)/(B·d)', () => {
    const g = tf.tidy(() => tf.grad((x: tf.Tensor) => featureKdLoss('mse', x as tf.Tensor2D, t()))(s()).arraySync() as number[][]);
    const want = [[0.5 - 1, -1 - 0, 2 - 1], [1.5 + 0.5, 0.25 - 2, -0.75 - 0.5]].map((r) => r.map((d) => (2 * d) / 6));
    g.forEach((row, i) => row.forEach((v, j) => expect(v).to.be.closeTo(want[i]![j]!, 1e-6)));
  });

  it('allocates nothing that outlives the call', () => {
    const before = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) value('mse-normalised');
    expect(tf.memory().numTensors).to.equal(before);
  });
});
