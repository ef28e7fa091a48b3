import { existsSync } from 'node:fs';
import { expect } from 'chai';
import { runCli } from '../helpers/cli.js';

// The example recipes of the embedding-level baselines validate and plan against ../shared/data.
describe('examples/recipes: feature-kd, rkd, sp, darkrank, cckd', function () {
  this.timeout(120_000);
  for (const name of ['feature-kd', 'rkd', 'sp', 'darkrank', 'cckd']) {
    it(`facedistill plan examples/recipes/${name}.yaml succeeds, also with the short --set`, function () {
      if (!existsSync('../shared/data/celeba-crops/images') || !existsSync('../shared/data/lfw-deepfunneled/pairs.txt')) {
        console.warn('    skipped: ../shared/data (CelebA crops, LFW deep-funneled) is not present');
        this.skip();
      }
      for (const extra of [[], ['--set', 'stages.0.steps=400']]) {
        const r = runCli(['plan', `examples/recipes/${name}.yaml`, ...extra]);
        expect(r.status, r.stderr).to.equal(0);
        expect(r.stdout).to.contain(`1. distill: ${name}, ${extra.length ? 400 : 2000} steps × batch 32`);
      }
    });
  }
});
