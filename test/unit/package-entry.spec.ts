import { expect } from 'chai';

describe('package entry (exports map)', () => {
  it("import from 'facedistill' gives the engine, the built-ins and the plugin API; 'facedistill/core' the core alone", async () => {
    const pkg = await import('facedistill') as Record<string, unknown>;
    for (const name of ['runRecipe', 'loadRecipe', 'evaluateModels', 'selectBackend', 'builtinModules', 'contribution', 'contributionModule', 'cosineDistance']) {
      expect(pkg[name], name).to.not.equal(undefined);
    }
    expect(Array.isArray(pkg.builtinModules)).to.equal(true);
    const core = await import('facedistill/core') as Record<string, unknown>;
    expect(core.contribution).to.equal(pkg.contribution);
    expect(core.runRecipe, 'the core entry leaves the engine to the package entry').to.equal(undefined);
  });
});
