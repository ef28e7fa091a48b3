import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { logitKdLoss } from '../../strategies/logit-kd/loss.js';
import { checksum, expectNoLeak, grid, gradOf, relErr, t2 } from '../helpers/loss-inputs.js';

// Reference numbers printed by test/fixtures/loss-refs/logit-kd.py (numpy, float64 from the float32 inputs).
const REF = {
  checksum: { zs: 84.80799779, zt: 177.2720016 },
  T4: 4.347930843,
  T1: 1.49723154,
  // central finite differences of the T = 4 loss w.r.t. the student logits, row-major [6, 10]
  gradT4: [0.1092783615, 0.0262312958, -0.0005590847785, -0.08741296265, 0.02919234632, -0.06642799555, 0.004072938875, 0.1187144072, -0.04858094327, -0.0845083612, 0.004231665685, -0.006275433506, -0.0006140017383, 0.005593566499, -0.05270527126, -8.786749106e-06, 0.04614211679, 0.07688314296, -0.03474168198, -0.03850531627, -0.008553634689, 0.0107043876, 0.003140573579, -0.04546651766, -0.000574215786, 0.03245609337, 0.05583123075, -0.03838816998, -0.0435594032, 0.03440965468, -0.02761712103, 0.01084692203, -0.04749206228, 0.002087122919, 0.08412232111, -0.002092487073, -0.04725728164, -0.04554863731, -0.03135906512, 0.1043102902, 0.09719562133, -0.02034926361, 0.02877636796, 0.01558907048, -0.06249436524, -0.01587443865, -0.01264859462, -0.03750722444, -0.08988279454, 0.09719562177, 0.004677394028, 0.1354068631, -0.05570887218, -0.001014600848, 0.008066369794, 0.01082717116, 0.0027343523, -0.01464205557, -0.1494239976, 0.05907737677],
};

describe('logit-kd loss (Hinton, T²/B · Σ KL)', () => {
  const zs = grid(6, 10, 3, 8), zt = grid(6, 10, 4, 8);
  const value = (s: number[][], t: number[][], T?: number) => tf.tidy(() => logitKdLoss(t2(s), t2(t), T).dataSync()[0]!);

  it('uses the same inputs as the python script', () => {
    expect(checksum(zs)).to.be.closeTo(REF.checksum.zs, 1e-4);
    expect(checksum(zt)).to.be.closeTo(REF.checksum.zt, 1e-4);
  });

  it('hand-worked case: p^t = [½, ½], q = [¾, ¼] at T = 4 gives 16·½·ln(4/3)', () => {
    // z^s/T = [ln 3, 0] → softmax [3/4, 1/4]; KL = ½ ln(½/¾) + ½ ln(½/¼) = ½ ln(4/3); × T²/B = 16.
    expect(value([[4 * Math.log(3), 0]], [[0, 0]])).to.be.closeTo(8 * Math.log(4 / 3), 1e-5);
  });

  it('matches numpy at T = 4 (default) and T = 1', () => {
    expect(value(zs, zt)).to.be.closeTo(REF.T4, 1e-5 * REF.T4);
    expect(value(zs, zt, 1)).to.be.closeTo(REF.T1, 1e-5 * REF.T1);
  });

  it('is zero for identical logits and positive otherwise', () => {
    expect(value(zt, zt)).to.be.closeTo(0, 1e-6);
    expect(value(zs, zt)).to.be.greaterThan(0.1);
  });

  it('gradient w.r.t. the student logits matches finite differences', () => {
    const g = gradOf((x) => logitKdLoss(x, t2(zt)), zs);
    expect(relErr(g, REF.gradT4)).to.be.lessThan(1e-4);
  });

  it('allocates nothing beyond the returned scalar', () => {
    const a = t2(zs), b = t2(zt);
    expectNoLeak(() => logitKdLoss(a, b), 1);
    tf.dispose([a, b]);
  });
});
