import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { MST_KD_LAMBDA, mstKdLoss } from '../../strategies/mst-kd/loss.js';
import { checksum, expectNoLeak, grid, gradOf, relErr, t2 } from '../helpers/loss-inputs.js';

// Printed by test/fixtures/loss-refs/mst-kd.py (numpy, float64 from the float32 inputs); grad = central differences.
const REF = {
  checksum: {
    s: -41.75399934,
    a: -12.27500056,
  },
  loss: 326.8993552,
  viaCosine: 326.8993552,
  grad: [
    22.98237538, 16.39338365, -14.68750483, -8.488908406, 17.22861654, -14.9940071,
    -0.6896530351, 22.61372754, 3.649591179, -10.00919181, -10.12202071, 3.226589541,
    22.47623962, 0.317842705, -15.94314588, 18.22264798, 4.075807624, -14.85274348,
    1.723435958, 5.907015833, -4.203265235, -6.878519542, 15.69867766, 8.042955926,
    -1.620732576, -2.08111436, 6.815450377, 15.96026692, -3.810616278, -8.077094918,
    10.29378049, -4.282595228, -14.77940825, 2.772766635, 4.959827407, -3.668312246,
    -6.682308623, 15.15718398, 7.200513465, -2.527573884, -3.32864181, 4.98803621,
    15.29851824, -1.280758994, -10.02542194, 12.06882342, -7.339566821, -7.483858269,
    0.6781176296, 10.76733631, -9.447491891, -5.083554129, 22.30152444, 4.909521806,
    -9.820961793, -11.29451178, -0.09295928294, 20.15081125, 6.551200329, -20.07606196,
    21.71725404, -18.14649437, -0.8038784358, 22.34347389, 17.52626471, -17.818217,
    18.13001273, -0.6310308436, -18.43573469, -17.01805604, -16.10410891, -18.93858868,
    -9.465079557, 17.52626471, -6.308093191, 1.877181546, -8.395037241, 18.74959696,
    -3.078378683, -17.25093443, 1.826090198, 8.154613028, -16.51342652, -6.665689682,
    5.135467916, 7.007821296, -0.7693252257, -15.09315879, -5.546454929, 15.59197997,
    -16.63079237, 15.10840491, -3.140736965, -16.31681366, -5.642067038, 1.006533154,
  ],
};

describe('mst-kd loss (λ·MSE(n(a), n(s)), λ = 1e4)', () => {
  const s = grid(6, 16, 8), a = grid(6, 16, 7);
  const value = (x: number[][], y: number[][], lambda?: number) => tf.tidy(() => mstKdLoss(t2(x), t2(y), lambda).dataSync()[0]!);

  it('uses the same inputs as the python script; λ = 10,000', () => {
    expect(checksum(s)).to.be.closeTo(REF.checksum.s, 1e-4);
    expect(checksum(a)).to.be.closeTo(REF.checksum.a, 1e-4);
    expect(MST_KD_LAMBDA).to.equal(10_000);
  });

  it('hand-worked case: orthogonal unit vectors in d = 2 give λ·mean([1, 1]) = 1e4', () => {
    expect(value([[0, 5]], [[2, 0]])).to.be.closeTo(1e4, 1e-2);
  });

  it('matches numpy', () => expect(value(s, a)).to.be.closeTo(REF.loss, 1e-5 * REF.loss));

  it('equals (λ/d)·mean_i(2 − 2cos(a_i, s_i)) (§2.3 step 4: 19.53·mean(2 − 2cos) at d = 512)', () => {
    // The cosine form computed independently here, with tfjs ops that do not share code with mstKdLoss.
    const viaCos = tf.tidy(() => {
      const dot = tf.sum(tf.mul(t2(s), t2(a)), 1);
      const cos = tf.div(dot, tf.mul(tf.norm(t2(s), 'euclidean', 1), tf.norm(t2(a), 'euclidean', 1)));
      return tf.mean(tf.sub(2, tf.mul(2, cos))).dataSync()[0]! * (MST_KD_LAMBDA / 16);
    });
    expect(REF.viaCosine).to.be.closeTo(REF.loss, 1e-9 * REF.loss);
    expect(value(s, a)).to.be.closeTo(viaCos, 1e-5 * viaCos);
    expect(MST_KD_LAMBDA / 512).to.be.closeTo(19.53, 0.005);
  });

  it('gradient w.r.t. the student embeddings matches finite differences', () => {
    expect(relErr(gradOf((x) => mstKdLoss(x, t2(a)), s), REF.grad)).to.be.lessThan(1e-4);
  });

  it('allocates nothing beyond the returned scalar', () => {
    const x = t2(s), y = t2(a);
    expectNoLeak(() => mstKdLoss(x, y), 1);
    tf.dispose([x, y]);
  });
});
