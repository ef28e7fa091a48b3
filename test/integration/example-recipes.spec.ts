import { existsSync } from 'node:fs';
import { expect } from 'chai';
import { builtinModules } from '../../builtins.js';
import { createRootContainer } from '../../core/di/container.js';
import { ContributionRegistry } from '../../core/di/registry.js';
import type { Slot } from '../../core/di/contribution.js';
import { runCli } from '../helpers/cli.js';

// `facedistill plan` on the strategy example recipes (examples/recipes/), which read ../shared/data.

const recipes: { file: string; needs: [Slot, string][]; kinds: string[] }[] = [
  { file: 'examples/recipes/mst-kd.yaml', needs: [], kinds: ['multi-teacher', 'mst-adaptor', 'mst-kd'] },
  { file: 'examples/recipes/synthdistill.yaml', needs: [['data', 'pca-face']], kinds: ['pca-face', 'synthdistill'] },
  { file: 'examples/recipes/bridge.yaml', needs: [['data', 'views']], kinds: ['views', 'bridge-adapt', 'bridge-distil', 'bridge-tiny'] },
  { file: 'examples/bridge-lr-eval.yaml', needs: [['pairs', 'lr-pairs']], kinds: ['lr-pairs', 'lfw-pairs'] },
  { file: 'examples/lfw-eval-arcface.yaml', needs: [], kinds: ['graph-model', 'lfw-pairs', 'align: five-point'] },
  { file: 'examples/lfw-eval-dlib-chip.yaml', needs: [], kinds: ['face-api-resnet34', 'lfw-pairs', 'align: dlib-chip'] },
  { file: 'examples/aligned/ffhq.yaml', needs: [], kinds: ['image-folder', 'layout: flat', 'align: five-point', 'mobilefacenet'] },
  { file: 'examples/aligned/celeba-10k.yaml', needs: [], kinds: ['image-folder', 'layout: flat', 'alignCentre'] },
  { file: 'examples/aligned/celeba-identities.yaml', needs: [], kinds: ['image-folder', 'align: five-point', 'celeba-aligned-identities'] },
];

describe('strategy example recipes (plan)', function () {
  this.timeout(120_000);
  const registry = ContributionRegistry.fromContainer(createRootContainer(builtinModules));
  for (const r of recipes) {
    it(`facedistill plan ${r.file}`, function () {
      if (!existsSync('../shared/data/celeba-crops/images') || !existsSync('../shared/data/lfw-deepfunneled/pairs.txt')) {
        this.skip(); // needs ../shared/data (CelebA crops, LFW deep-funneled) beside the checkout
      }
      const missing = r.needs.filter(([slot, kind]) => !registry.find(slot, kind));
      if (missing.length > 0) {
        console.log(`      skipped: ${missing.map(([s, k]) => `${s} kind "${k}"`).join(', ')} not registered in this build`);
        this.skip();
      }
      const res = runCli(['plan', r.file]);
      expect(res.status, res.stderr).to.equal(0);
      for (const k of r.kinds) expect(res.stdout, k).to.contain(k);
    });
  }
});
