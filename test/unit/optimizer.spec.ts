import { expect } from 'chai';
import { learningRateAt } from '../../core/engine/optimizer.js';

describe('learning-rate schedules', () => {
  it('constant with linear warm-up: base·(step+1)/warmup, then base', () => {
    const s = { kind: 'constant' as const, warmupSteps: 4 };
    const lr = [0, 1, 2, 3, 4, 10].map((k) => learningRateAt(0.1, s, k, 20));
    [0.025, 0.05, 0.075, 0.1, 0.1, 0.1].forEach((w, i) => expect(lr[i]).to.be.closeTo(w, 1e-15));
  });

  it('step decay multiplies by gamma at each milestone passed', () => {
    const s = { kind: 'step' as const, warmupSteps: 0, milestones: [10, 20], gamma: 0.1 };
    const lr = [0, 9, 10, 19, 20, 30].map((k) => learningRateAt(1, s, k, 40));
    [1, 1, 0.1, 0.1, 0.01, 0.01].forEach((w, i) => expect(lr[i]).to.be.closeTo(w, 1e-15));
  });

  it('cosine: hand-worked points (base 1, min 0, 10 steps after 2 warm-up steps)', () => {
    const s = { kind: 'cosine' as const, warmupSteps: 2, minLr: 0 };
    // step 2 -> t=0 -> 1; step 7 -> t=0.5 -> 0.5; step 12 -> t=1 -> 0; step 4 -> t=0.2 -> (1+cos(0.2π))/2 = 0.9045084971874737
    expect(learningRateAt(1, s, 2, 12)).to.be.closeTo(1, 1e-12);
    expect(learningRateAt(1, s, 7, 12)).to.be.closeTo(0.5, 1e-12);
    expect(learningRateAt(1, s, 4, 12)).to.be.closeTo(0.9045084971874737, 1e-12);
    expect(learningRateAt(1, s, 12, 12)).to.be.closeTo(0, 1e-12);
  });

  it('cosine respects minLr', () => {
    const s = { kind: 'cosine' as const, warmupSteps: 0, minLr: 0.1 };
    expect(learningRateAt(1, s, 5, 10)).to.be.closeTo(0.55, 1e-12);
  });
});
