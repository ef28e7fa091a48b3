import { existsSync } from 'node:fs';
import { expect } from 'chai';
import { builtinModules } from '../../builtins.js';
import { createRootContainer } from '../../core/di/container.js';
import { loadRecipe } from '../../core/recipe/load.js';
import { mergedRecipe } from '../../core/recipe/validate.js';
import { generalCount } from '../../strategies/ekd/ekd.js';
import { runCli } from '../helpers/cli.js';

// The example recipes of the label-based strategies validate and plan against ../shared/data.
describe('examples/recipes: margin-only, ekd, grouped-kd, logit-kd', function () {
  this.timeout(120_000);
  for (const name of ['margin-only', 'ekd', 'grouped-kd', 'logit-kd']) {
    it(`facedistill plan examples/recipes/${name}.yaml succeeds, also with the short --set`, function () {
      if (!existsSync('../shared/data/celeba-crops/images') || !existsSync('../shared/data/lfw-deepfunneled/pairs.txt')) {
        console.warn('    skipped: ../shared/data (CelebA crops, LFW deep-funneled) is not present');
        this.skip();
      }
      const file = `examples/recipes/${name}.yaml`;
      for (const extra of [[], ['--set', 'stages.0.steps=200']]) {
        const r = runCli(['plan', file, ...extra]);
        expect(r.status, r.stderr).to.equal(0);
        expect(r.stdout).to.contain(`1. train: ${name}, ${extra.length ? 200 : 3000} steps × batch 64`);
      }
    });
  }

  it('ekd.yaml: the CE\'s general part (generalFraction·B) is exactly the sampler\'s uniform part (B − P·K)', async function () {
    if (!existsSync('../shared/data/celeba-crops/images') || !existsSync('../shared/data/lfw-deepfunneled/pairs.txt')) {
      console.warn('    skipped: ../shared/data (CelebA crops, LFW deep-funneled) is not present');
      this.skip();
    }
    const m = mergedRecipe(await loadRecipe('examples/recipes/ekd.yaml', [], createRootContainer(builtinModules))) as any;
    const st = m.stages[0];
    expect(m.data.sampler).to.deep.equal({ kind: 'general-plus-pk', identities: 8, perIdentity: 4 });
    expect(generalCount(st.batchSize, st.strategy.generalFraction)).to.equal(st.batchSize - 8 * 4);
  });
});
