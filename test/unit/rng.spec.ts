import { expect } from 'chai';
import { EpochSampler } from '../../core/data/epoch-sampler.js';
import { Rng } from '../../core/util/rng.js';

describe('seeded RNG and sampler', () => {
  it('same seed, same stream; different seed, different stream', () => {
    const a = new Rng(42), b = new Rng(42), c = new Rng(43);
    const xa = Array.from({ length: 5 }, () => a.nextU32());
    expect(Array.from({ length: 5 }, () => b.nextU32())).to.deep.equal(xa);
    expect(Array.from({ length: 5 }, () => c.nextU32())).to.not.deep.equal(xa);
  });

  it('restoring a saved state continues the identical stream', () => {
    const a = new Rng(5);
    for (let i = 0; i < 100; i++) a.next();
    const st = a.state();
    const tail = Array.from({ length: 10 }, () => a.next());
    expect(Array.from({ length: 10 }, () => Rng.fromState(st).next())[0]).to.equal(tail[0]);
    const r = Rng.fromState(st);
    expect(Array.from({ length: 10 }, () => r.next())).to.deep.equal(tail);
  });

  it('uniform draws stay in [0,1) with mean near 1/2; normals have mean 0, sd 1', () => {
    const r = new Rng(1);
    const u = Array.from({ length: 20000 }, () => r.next());
    expect(Math.min(...u)).to.be.at.least(0);
    expect(Math.max(...u)).to.be.below(1);
    expect(u.reduce((a, b) => a + b) / u.length).to.be.closeTo(0.5, 0.01);
    const n = Array.from({ length: 20000 }, () => r.normal());
    const m = n.reduce((a, b) => a + b) / n.length;
    const sd = Math.sqrt(n.reduce((a, b) => a + (b - m) ** 2, 0) / n.length);
    expect(m).to.be.closeTo(0, 0.03);
    expect(sd).to.be.closeTo(1, 0.03);
  });

  it('the epoch sampler visits every index once per epoch and resumes exactly', () => {
    const s = new EpochSampler(7, 3);
    const epoch = s.take(7);
    expect([...epoch].sort()).to.deep.equal([0, 1, 2, 3, 4, 5, 6]);
    s.take(3);
    const st = JSON.parse(JSON.stringify(s.state()));
    const next = s.take(10);
    const t = new EpochSampler(7, 999);
    t.restore(st);
    expect(t.take(10)).to.deep.equal(next);
  });
});
