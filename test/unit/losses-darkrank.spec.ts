import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { DARKRANK_DEFAULTS, darkRankLoss, teacherRanking } from '../../strategies/darkrank/loss.js';
import { checksum, expectNoLeak, grid, gradOf, relErr, t2 } from '../helpers/loss-inputs.js';

// Printed by test/fixtures/loss-refs/darkrank.py (numpy, float64 from the float32 inputs). lists: the teacher's
// top-3 neighbours of each anchor; minGap: the smallest teacher-score gap at those ranks (far above float32 noise);
// grad = central differences with the lists fixed; b3*: a batch of 3, where the list length is clamped to 2.
const REF = {
  checksum: {
    fs: -3.632999033,
    ft: 16.97300044,
  },
  lists: [
    [5, 3, 6],
    [7, 5, 4],
    [6, 5, 4],
    [5, 0, 6],
    [7, 1, 2],
    [3, 1, 0],
    [2, 0, 1],
    [1, 4, 0],
  ],
  minGap: 0.03183156854,
  loss: 11.92789429,
  grad: [
    0.844443206, -0.06170603672, -0.5828897294, 0.4569796594, 1.43722552, 0.307640093,
    -0.102049567, -1.506251894, -0.5816046382, -0.4385452632, 0.2215773014, 0.2706581084,
    -1.618586636, -1.028722358, -0.4719024727, 0.2605497622, -0.5395291538, 0.5404758134,
    -0.1341530691, -0.1301360228, 1.231907177, 0.885238606, 0.7103254696, 0.5326070287,
    0.6218396749, -0.3438208811, -0.4320630911, 0.5105220087, 1.325476541, 0.2140173176,
    0.4065970298, -0.5155854161, 0.2879656256, 0.2404248267, -0.6482792116, 1.055441763,
    -2.247178946, -1.351435417, 0.6243995543, 1.02870547, -0.6120926788, 0.32296537,
    0.03776399993, -0.1800021607, 1.6295363, -0.4805063885, -0.2343109013, -0.669681345,
    -0.1702290913, -0.9757273016, 1.168304385, -1.143678277, -0.8396241373, 1.646599282,
    -0.2353025579, 0.1585897582, 0.5422944165, -1.084377126, -0.5152545217, 1.133103136,
    -2.10714993, 0.4105633806, -0.3334513936, -0.4003671883,
  ],
  b3Lists: [
    [1, 2],
    [0, 2],
    [1, 0],
  ],
  b3Loss: 5.482550385,
};

const value = (s: number[][], t: number[][]) => tf.tidy(() => darkRankLoss(t2(s), t2(t)).dataSync()[0]!);

describe('darkrank loss (hard, Plackett–Luce over the teacher top-3)', () => {
  const fs = grid(8, 8, 13), ft = grid(8, 8, 14);

  it('uses the same inputs as the python script; α = β = 3, list length 3', () => {
    expect(checksum(fs)).to.be.closeTo(REF.checksum.fs, 1e-4);
    expect(checksum(ft)).to.be.closeTo(REF.checksum.ft, 1e-4);
    expect(DARKRANK_DEFAULTS).to.deep.equal({ alpha: 3, beta: 3, listLength: 3 });
    expect(REF.minGap).to.be.greaterThan(1e-3);
  });

  it('ranks the teacher neighbours as numpy does', () => {
    const scores = tf.tidy(() => {
      // s_ij = −3·ψ³ on normalised teacher embeddings, computed here independently of the loss module.
      const u = tf.div(t2(ft), tf.norm(t2(ft), 'euclidean', 1, true));
      const d = tf.sqrt(tf.relu(tf.sum(tf.square(tf.sub(tf.expandDims(u, 1), tf.expandDims(u, 0))), 2)));
      return tf.mul(-3, tf.pow(d, 3)).dataSync() as Float32Array;
    });
    expect(teacherRanking(scores, 8, 3).map((l) => Array.from(l))).to.deep.equal(REF.lists);
  });

  it('hand-worked case: four points on a circle, student = teacher, gives ln 2 + 1.5·e^{o−a}', () => {
    // Adjacent points: ψ = √2, score a = −3·2√2; opposite: ψ = 2, score o = −24. Each anchor's list is
    // (adjacent, adjacent, opposite): −log P = ln(2 + e^{o−a}) + ln(1 + e^{o−a}) ≈ ln 2 + 1.5·e^{o−a}.
    const sq = [[1, 0], [0, 1], [-1, 0], [0, -1]];
    const a = -6 * Math.SQRT2, o = -24;
    expect(value(sq, sq)).to.be.closeTo(Math.log(2) + 1.5 * Math.exp(o - a), 1e-6);
  });

  it('matches numpy, and clamps the list length to B − 1', () => {
    expect(value(fs, ft)).to.be.closeTo(REF.loss, 1e-5 * REF.loss);
    expect(value(fs.slice(0, 3), ft.slice(0, 3))).to.be.closeTo(REF.b3Loss, 1e-5 * REF.b3Loss);
  });

  it('gradient w.r.t. the student matches finite differences', () => {
    expect(relErr(gradOf((x) => darkRankLoss(x, t2(ft)), fs), REF.grad)).to.be.lessThan(1e-4);
  });

  it('allocates nothing beyond the returned scalar', () => {
    const a = t2(fs), b = t2(ft);
    expectNoLeak(() => darkRankLoss(a, b), 1);
    tf.dispose([a, b]);
  });
});
