import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { RKD_DEFAULTS, rkdLoss, type RkdTerms } from '../../strategies/rkd/loss.js';
import { checksum, expectNoLeak, grid, gradOf, relErr, t2 } from '../helpers/loss-inputs.js';

// Printed by test/fixtures/loss-refs/rkd.py (numpy, float64 from the float32 inputs; distances from direct
// differences, not the Gram expansion the implementation uses); grad = central differences of the total.
const REF = {
  checksum: {
    s: -25.55999994,
    t: -23.21300054,
  },
  loss: 2.205390564,
  distance: 0.02987504737,
  angle: 0.0291702876,
  grad: [
    -0.03572074192, 0.02425916246, -0.04401231379, -0.3534664208, 0.5182919045, 0.09631783815,
    0.1811100558, 0.2059927635, 0.145765872, 0.2433272139, -0.16218989, 0.1854987675,
    -0.06711078426, 0.2139498716, -0.0355011851, 0.146526544, -0.2231397889, -0.03892744194,
    0.06460252977, -0.2982085607, 0.2477174408, 0.07341577635, 0.1454994183, -0.08803557594,
    -0.3302268337, 0.3292678743, -0.3850459955, 0.1644429732, -0.9801665275, -0.5171489739,
    -0.07636385768, 0.03063601706, 0.2111291957, -0.5314452378, 0.4036554793, 0.1578431492,
    -0.1028163463, -0.305647379, -0.3439315865, -0.5195584767, 0.2321922967, -0.02648157138,
    0.1229901898, 0.1438900921, 0.3840843132, 0.4391128667, 0.1291871543, 0.2244387278,
  ],
  hand: [5.671296296, 0.04166666667, 0.09259259259],
};

const values = (s: number[][], t: number[][]) => tf.tidy(() => {
  const r: RkdTerms = rkdLoss(t2(s), t2(t));
  return { loss: r.loss.dataSync()[0]!, distance: r.distance.dataSync()[0]!, angle: r.angle.dataSync()[0]! };
});

describe('rkd loss (25·Huber distance + 50·Huber angle)', () => {
  const s = grid(6, 8, 11), t = grid(6, 8, 12);

  it('uses the same inputs as the python script; weights 25 and 50', () => {
    expect(checksum(s)).to.be.closeTo(REF.checksum.s, 1e-4);
    expect(checksum(t)).to.be.closeTo(REF.checksum.t, 1e-4);
    expect(RKD_DEFAULTS).to.deep.equal({ distanceWeight: 25, angleWeight: 50 });
  });

  it('hand-worked case: three collinear student points against an equilateral teacher triangle', () => {
    // Student (0,0),(1,0),(2,0): ψ = 1, 1, 2 (each twice), μ = 4/3 → ψ/μ = .75, .75, 1.5; teacher ψ/μ = 1.
    // Differences .25, .25, .5 twice → Σ ½x² = 0.375 over 9 entries → distance = 1/24.
    // Angles: anchor 0 and 2 each have two entries 1 vs .5 (Huber .125), anchor 1 two entries −1 vs .5 (Huber 1):
    // Σ = 2.5 over 27 entries → angle = 5/54. Total 25/24 + 250/54.
    const r = values([[0, 0], [1, 0], [2, 0]], [[0, 0], [1, 0], [0.5, Math.sqrt(3) / 2]]);
    expect(r.distance).to.be.closeTo(1 / 24, 1e-6);
    expect(r.angle).to.be.closeTo(5 / 54, 1e-6);
    expect(r.loss).to.be.closeTo(25 / 24 + 250 / 54, 1e-5);
    expect(REF.hand).to.deep.equal([5.671296296, 0.04166666667, 0.09259259259]); // the script agrees
  });

  it('matches numpy (total, distance and angle terms)', () => {
    const r = values(s, t);
    expect(r.distance).to.be.closeTo(REF.distance, 1e-4 * REF.distance);
    expect(r.angle).to.be.closeTo(REF.angle, 1e-4 * REF.angle);
    expect(r.loss).to.be.closeTo(REF.loss, 1e-4 * REF.loss);
  });

  it('is zero when the teacher is a scaled and shifted copy of the student (relations only)', () => {
    const r = values(s, s.map((row) => row.map((v) => 3 * v + 0.5)));
    expect(r.loss).to.be.closeTo(0, 1e-5);
  });

  it('gradient w.r.t. the student (μ^s included) matches finite differences, and is finite on the diagonal', () => {
    const g = gradOf((x) => rkdLoss(x, t2(t)).loss, s);
    expect(g.every(Number.isFinite)).to.equal(true);
    expect(relErr(g, REF.grad)).to.be.lessThan(1e-4);
  });

  it('rejects a batch of one', () => {
    expect(() => tf.tidy(() => { rkdLoss(t2([[1, 2]]), t2([[3, 4]])); })).to.throw(/at least 2/);
  });

  it('allocates nothing beyond the three returned scalars', () => {
    const a = t2(s), b = t2(t);
    expectNoLeak(() => { const r = rkdLoss(a, b); return [r.loss, r.distance, r.angle]; }, 3);
    tf.dispose([a, b]);
  });
});
