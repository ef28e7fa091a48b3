import { expect } from 'chai';
import { mean, pairedDifference, sampleStd, seedStats, studentTCdf, studentTQuantile } from '../../core/ablation/stats.js';

// Reference numbers: python3 test/fixtures/ablation_stats.py (numpy 2.4, scipy.stats 1.17).
describe('ablation statistics', () => {
  it('Student-t quantiles and CDF match scipy.stats.t', () => {
    const ppf975: Record<number, number> = { 1: 12.706204736174694, 2: 4.302652729749462, 3: 3.1824463052837078, 4: 2.7764451051977934, 9: 2.262157162798205, 30: 2.0422724563012378 };
    for (const [df, t] of Object.entries(ppf975)) expect(studentTQuantile(0.975, Number(df))).to.be.closeTo(t, 1e-9 * t);
    expect(studentTQuantile(0.995, 5)).to.be.closeTo(4.032142983555228, 1e-9);
    expect(studentTQuantile(0.025, 4)).to.be.closeTo(-2.7764451051977934, 1e-9);
    expect(studentTCdf(1.5, 7)).to.be.closeTo(0.911350756505015, 1e-12);
    expect(studentTCdf(0, 3)).to.equal(0.5);
  });

  it('mean and sample std (ddof 1) over seeds', () => {
    expect(mean([83.0, 86.5, 80.75])).to.be.closeTo(83.41666666666667, 1e-12);
    expect(sampleStd([83.0, 86.5, 80.75])).to.be.closeTo(2.897556441785618, 1e-12);
    expect(seedStats([70])).to.deep.equal({ n: 1, mean: 70, std: null });
    expect(seedStats([])).to.deep.equal({ n: 0, mean: null, std: null });
  });

  it('paired difference with a 95 % t interval, pairing by seed', () => {
    const base = new Map([[0, 81.5], [1, 84.25], [2, 79.0]]);
    const cell = new Map([[2, 80.75], [0, 83.0], [1, 86.5]]); // order does not matter: pairs by seed
    const d = pairedDifference(cell, base);
    expect(d.seeds).to.deep.equal([0, 1, 2]);
    expect(d.n).to.equal(3);
    expect(d.mean!).to.be.closeTo(1.8333333333333333, 1e-12);
    expect(d.std!).to.be.closeTo(0.38188130791298663, 1e-12);
    expect(d.lo!).to.be.closeTo(0.8846875749341434, 1e-9);
    expect(d.hi!).to.be.closeTo(2.781979091732523, 1e-9);
    // A seed missing in the cell drops that pair (n = 2, 1 dof).
    const d2 = pairedDifference(new Map([[0, 83.0], [2, 80.75]]), base);
    expect(d2.n).to.equal(2);
    expect(d2.mean!).to.be.closeTo(1.625, 1e-12);
    expect(d2.lo!).to.be.closeTo(0.03672440797816323, 1e-9);
    expect(d2.hi!).to.be.closeTo(3.2132755920218368, 1e-9);
    // One pair: a difference but no interval.
    const d1 = pairedDifference(new Map([[1, 86.5]]), base);
    expect([d1.n, d1.mean, d1.lo, d1.hi]).to.deep.equal([1, 2.25, null, null]);
  });
});
