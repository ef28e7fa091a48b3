import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { spLoss } from '../../strategies/sp/loss.js';
import { checksum, expectNoLeak, grid, gradOf, relErr, t2 } from '../helpers/loss-inputs.js';

// Printed by test/fixtures/loss-refs/sp.py (numpy, float64 from the float32 inputs); grad = central differences.
const REF = {
  checksum: {
    fs: 41.80499942,
    ft: 8.01500017,
  },
  loss: 0.1012078823,
  grad: [
    0.007330812936, -0.000352386495, -0.009743027767, 0.005179213627, 0.003920742384, -0.003116406903,
    -0.003298156977, 0.002366056573, 0.0101062362, -0.006163377288, 0.000718647919, -0.001551276392,
    -0.0009550721394, -0.01102854678, 0.007211499266, -0.003808407908, -0.01323817268, -0.008528692863,
    -0.0001011457029, 0.008241137328, 0.002895040305, -0.006733079795, 0.003256213278, -0.006552587098,
    -0.01757931881, 0.00305703992, -0.004768968061, 0.006337553676, -0.001024751325, 0.006259241771,
    0.004094818901, 0.00704900438, -0.0006962003057, 0.005777794708, 0.002423022137, 0.002056586915,
    -0.003084918258, 0.006377936443, 0.001898764763, -0.003366076473, 0.00858970698, 0.006059806046,
    0.001665313248, -0.001446436595, -0.0006289517657, 0.005968622013, -0.003535386983, 0.003592332126,
    0.01404160575, -0.002150729594, -0.006325877835, 0.008001691754, -0.003986135796, -0.001177577397,
    -0.0006713188547, -0.0008992029898, 0.00760883602, 0.003082503051, -0.004928446373, 0.002723439758,
    -0.0001832941784, 0.002970749778, -0.002783107078, -0.003144981602, 0.009459722082, -0.004701479733,
    -0.009394638345, -0.004883182143, 1.06976511e-05, 0.008421632267, 0.002493143123, -0.006785155993,
    -0.01311318573, 0.006178962494, 0.005442285678, 0.001980469067, 0.001288623167, 0.01459503522,
    -0.007275132073, -0.009402315974, 0.004992109393, 0.001247479745, 0.0115635699, 0.008618640024,
    0.002278995569, -0.01438644097, -0.005332183167, 0.002604605837, -0.003680860845, 0.004028861147,
    0.0009617439414, 0.002370644847, -1.691716212e-05, -0.009464844797, 0.005476058398, 0.004904444656,
  ],
};

describe('sp loss (‖G^s − G^t‖²_F / B²)', () => {
  const fs = grid(8, 12, 5), ft = grid(8, 12, 6);
  const value = (s: number[][], t: number[][]) => tf.tidy(() => spLoss(t2(s), t2(t)).dataSync()[0]!);

  it('uses the same inputs as the python script', () => {
    expect(checksum(fs)).to.be.closeTo(REF.checksum.fs, 1e-4);
    expect(checksum(ft)).to.be.closeTo(REF.checksum.ft, 1e-4);
  });

  it('hand-worked case: orthogonal student vs collinear teacher gives 2/4', () => {
    // G^s = I, G^t = 11ᵀ → G^s − G^t = [[0, −1], [−1, 0]], ‖·‖²_F = 2, / B² = 0.5. Scale is removed by n(·).
    expect(value([[3, 0], [0, 0.5]], [[1, 0], [2, 0]])).to.be.closeTo(0.5, 1e-6);
  });

  it('matches numpy', () => expect(value(fs, ft)).to.be.closeTo(REF.loss, 1e-5 * REF.loss));

  it('is invariant to rescaling each embedding', () => {
    const scaled = fs.map((r, i) => r.map((v) => v * (i + 0.5)));
    expect(value(scaled, ft)).to.be.closeTo(REF.loss, 1e-5 * REF.loss);
  });

  it('gradient w.r.t. the student embeddings matches finite differences', () => {
    expect(relErr(gradOf((x) => spLoss(x, t2(ft)), fs), REF.grad)).to.be.lessThan(1e-4);
  });

  it('allocates nothing beyond the returned scalar', () => {
    const a = t2(fs), b = t2(ft);
    expectNoLeak(() => spLoss(a, b), 1);
    tf.dispose([a, b]);
  });
});
