import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { agreement, gradedStd, synthDistillLoss, worstK, worstKDefault } from '../../strategies/synthdistill/loss.js';
import { checksum, expectNoLeak, grid, gradOf, relErr, t2 } from '../helpers/loss-inputs.js';

// Printed by test/fixtures/loss-refs/synthdistill.py (numpy, float64 from the float32 inputs); grads = central
// differences. agreementWithZeroRow2: c_i for the student with row 2 set to zero.
const REF = {
  checksum: {
    s: -48.32499912,
    t: -19.44399981,
  },
  raw: 0.2581742927,
  l2: 0.04344413619,
  gradRaw: [
    -0.0117500002, -0.0004791667063, 0.01477083345, -0.005520833013, -0.001270834354, -0.0007499990629,
    0.01054166632, -0.01268749961, -0.01181249942, -0.004520833485, -0.004437500006, -0.01162499996,
    0.009687499469, 0.01237500025, -0.01310416683, 0.008250000572, -0.009604166573, 0.01468749997,
    -0.006041667111, -0.01485416667, -0.01133333272, -0.01106249914, -0.01468750027, -0.007958333964,
    0.01085416723, -0.01397916721, 0.009666667022, -0.0106249998, 0.01483333356, -0.005354167276,
    -0.0148749997, -0.01137499947, -0.01085416601, -0.0145833334, -0.008749999086, 0.01339583269,
    -0.01070833391, 0.0039583333, -0.004916666685, 0.01254166693, -0.01141666683, -0.01247916712,
    -0.004666667414, -0.003583333158, -0.01033333377, -0.01412500006, 0.006833333538, 0.004979167106,
    -0.009833334036, 0.009333333634, -0.0005208328213, -0.01391666615, 0.001312500497, 0.01056249999,
    0.01152083276, 0.005562500432, -0.009791667255, -0.009833332759, 0.0148958334, -0.01449999987,
    0.01164583302, -0.01485416667, 0.005833333983, 0.01470833302, 0.009541666124, 0.008083333558,
    0.01295833352, 0.01260416704, -0.009229167042, -0.002854167153, 0.00656249996, -0.001770834146,
    0.008729167278, 0.008062499252, -0.01039583297, -0.01487500034, -0.01481249989, -0.01389583326,
    -0.002229166518, 0.01485416667, -0.008666666829, 0.004895833627, -0.008999999634, 0.0148958334,
    -0.01245833345, 0.00545833384, 0.01354166665, 0.01437500055, 0.01145833295, -0.002312500053,
    -0.01454166665, 0.01147916665, -0.008041666222, 0.01131250027, -0.01464583385, -0.001541666683,
  ],
  gradL2: [
    -0.001873228857, -0.0007702350702, 0.001715122683, -1.31637895e-05, -0.0008646740234, 0.0006196741592,
    0.0007848060084, -0.001922588429, -0.001009072877, 0.0001257889279, 0.0001374954178, -0.0009758719111,
    3.689951469e-05, 0.00293342305, -0.001091795373, -0.0003179657822, -1.412965578e-05, 0.001932899771,
    -0.002644709712, -0.002113924296, -0.0004982325871, -0.0004156361644, -0.001924811182, -0.002806451058,
    0.003268507381, -0.001457741844, -0.0001569503555, -0.0001327071161, 0.002177248132, -0.002942347182,
    -0.002267702248, -0.0003746969401, -0.0002040547731, -0.001873933168, -0.003206272099, 0.001165782849,
    -0.0006925098724, -0.0003692185516, 0.0002351829079, 0.001054593711, -0.001961956653, -0.001040807739,
    0.0002704368951, 0.0004216260847, -0.0006249480655, -0.002003694616, 4.804260809e-05, 0.001441781305,
    -0.001694520801, 0.001617173343, -0.0002178136005, -0.00220908106, 0.0003457335425, 0.001806664141,
    0.001952317662, 0.00102561782, -0.001487026051, -0.001694377732, 0.00241633398, -0.002320370032,
    0.0009925699707, -0.001954788789, 0.001640144034, 0.001842248323, 0.000575111625, 0.0003118243129,
    0.001289320692, 0.00219453717, -0.0005175579132, -0.001295339398, 0.001718153658, -0.001160114012,
    0.002366029123, 0.0001614556405, -0.002500824943, -0.002342197724, -0.002149240036, -0.002579085272,
    -0.001600060001, 0.002188336023, -0.0002885894197, -0.0004549171803, -0.0003613651808, 0.002266976117,
    -0.001246541297, 0.00189506514, 0.002519397142, 0.00246352741, 0.002463438564, 0.0007901674592,
    -0.002440504271, 0.0009947011374, -0.0002415987133, 0.0009547760187, -0.002416086456, 0.0009143416926,
  ],
  agreementWithZeroRow2: [0.9260557569, 0.8343284271, 0.5, 0.928044277, 0.8889426654, 0.890638225, 0.8390423247, 0.8482483485],
  worst3: [1, 2, 6],
};

describe('synthdistill loss and resampling signals', () => {
  const s = grid(8, 12, 9), t = grid(8, 12, 10);
  const sZero = s.map((r, i) => (i === 2 ? r.map(() => 0) : r));
  const host = (f: (a: tf.Tensor2D, b: tf.Tensor2D) => Float32Array, x: number[][], y: number[][]): Float32Array => {
    const a = t2(x), b = t2(y);
    try { return f(a, b); } finally { tf.dispose([a, b]); }
  };

  it('uses the same inputs as the python script', () => {
    expect(checksum(s)).to.be.closeTo(REF.checksum.s, 1e-4);
    expect(checksum(t)).to.be.closeTo(REF.checksum.t, 1e-4);
  });

  it('hand-worked MSE: s = [1, 2], t = [0, 0] gives (1 + 4)/2', () => {
    expect(tf.tidy(() => synthDistillLoss(t2([[1, 2]]), t2([[0, 0]])).dataSync()[0]!)).to.be.closeTo(2.5, 1e-6);
  });

  it('MSE on raw (default) and l2-normalised embeddings matches numpy', () => {
    expect(tf.tidy(() => synthDistillLoss(t2(s), t2(t)).dataSync()[0]!)).to.be.closeTo(REF.raw, 1e-5 * REF.raw);
    expect(tf.tidy(() => synthDistillLoss(t2(s), t2(t), 'l2').dataSync()[0]!)).to.be.closeTo(REF.l2, 1e-5 * REF.l2);
  });

  it('gradients w.r.t. the student match finite differences (raw and l2)', () => {
    expect(relErr(gradOf((x) => synthDistillLoss(x, t2(t)), s), REF.gradRaw)).to.be.lessThan(1e-4);
    expect(relErr(gradOf((x) => synthDistillLoss(x, t2(t), 'l2'), s), REF.gradL2)).to.be.lessThan(1e-4);
  });

  it('hand-worked agreement: aligned 1, orthogonal ½, opposite 0, zero norm ½', () => {
    const c = host(agreement, [[2, 0], [1, 0], [1, 0], [0, 0]], [[3, 0], [0, 4], [-1, 0], [1, 1]]);
    expect(Array.from(c)).to.deep.equal([1, 0.5, 0, 0.5]);
  });

  it('graded std α·(cos + 1)/2 matches numpy, with the zero-norm guard on row 2', () => {
    const c1 = host((a, b) => gradedStd(a, b), sZero, t);
    const c05 = host((a, b) => gradedStd(a, b, 0.5), sZero, t);
    expect(c1[2]).to.equal(0.5);
    expect(relErr(c1, REF.agreementWithZeroRow2)).to.be.lessThan(1e-6);
    expect(relErr(c05, REF.agreementWithZeroRow2.map((v) => v / 2))).to.be.lessThan(1e-6);
  });

  it('worstK perturbs exactly the k lowest-cosine samples with σ (default k = B/4, σ = 0.1)', () => {
    const std = host((a, b) => worstK(a, b, 3, 0.2), sZero, t);
    const chosen = Array.from(std.keys()).filter((i) => std[i]! > 0);
    expect(chosen).to.deep.equal(REF.worst3);
    chosen.forEach((i) => expect(std[i]).to.be.closeTo(0.2, 1e-7));
    const dflt = host((a, b) => worstK(a, b), sZero, t);
    expect(dflt.filter((v) => v > 0).length).to.equal(2); // ⌊8/4⌋
    expect(Array.from(new Set(dflt))).to.have.members([0, Math.fround(0.1)]);
    expect(worstKDefault(128)).to.equal(32);
  });

  it('allocates nothing beyond the returned scalar; host signals allocate nothing', () => {
    const a = t2(s), b = t2(t);
    expectNoLeak(() => synthDistillLoss(a, b, 'l2'), 1);
    expectNoLeak(() => { gradedStd(a, b); worstK(a, b); return []; }, 0);
    tf.dispose([a, b]);
  });
});
