import { existsSync } from 'node:fs';
import { expect } from 'chai';
import { builtinModules } from '../../builtins.js';
import { createRootContainer } from '../../core/di/container.js';
import { loadRecipe } from '../../core/recipe/load.js';
import { mergedRecipe } from '../../core/recipe/validate.js';

describe('example recipes', () => {
  const root = createRootContainer(builtinModules);

  it('quickstart: a mix70_30 of aligned sample faces and a pca-face fitted on them, evaluated on aligned pairs', async () => {
    const r = await loadRecipe('examples/quickstart.yaml', [], root);
    const m = mergedRecipe(r) as any;
    expect(m.teacher.kind).to.equal('face-api-resnet34');
    expect(m.data.kind).to.equal('mix');
    expect(m.data.preset).to.equal('mix70_30');
    const [real, synth] = m.data.sources.map((s: any) => s.source);
    expect([real.kind, real.align]).to.deep.equal(['sample-faces', true]);
    expect([synth.kind, synth.fitOn.kind, synth.fitOn.align]).to.deep.equal(['pca-face', 'sample-faces', true]);
    expect(synth.size, 'synthetic faces at the real views\' size: no resize in the mix').to.equal(real.size);
    expect([m.eval.pairs.kind, m.eval.pairs.align]).to.deep.equal(['sample-face-pairs', true]);
  });

  it('lfw-distill still validates (image-folder, default uniform sampler)', async function () {
    const need = ['../shared/data/celeba-crops/images', '../shared/data/lfw-deepfunneled/pairs.txt'];
    if (!need.every((p) => existsSync(p))) {
      this.test!.title += ` (skipped: ${need.join(' or ')} absent)`;
      this.skip();
    }
    const m = mergedRecipe(await loadRecipe('examples/lfw-distill.yaml', [], root)) as any;
    expect(m.data.sampler).to.deep.equal({ kind: 'uniform' });
  });
});
