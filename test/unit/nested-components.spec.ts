import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { z } from 'zod';
import { builtinModules } from '../../builtins.js';
import { contribution, contributionModule } from '../../core/di/contribution.js';
import { createRootContainer } from '../../core/di/container.js';
import { contextFor } from '../../core/engine/run.js';
import { RecipeError } from '../../core/recipe/errors.js';
import { componentField } from '../../core/recipe/fields.js';
import { loadRecipe } from '../../core/recipe/load.js';
import { mergedRecipe } from '../../core/recipe/validate.js';
import { stderrLogger } from '../../core/util/logger.js';
import { tmpDir } from '../helpers/fixtures.js';

// A strategy whose options hold a nested data component and a list of them: the shape a
// `mix` source or a strategy's `head:` takes.
const built: string[] = [];
const outer = contribution({
  slot: 'strategy', kind: 'test-nested', summary: 'test only',
  options: z.object({
    inner: componentField('data'),
    parts: z.array(z.object({ weight: z.number().default(1), source: componentField('data') })).default([]),
  }),
  async create(o, ctx) {
    const d = await ctx.build('data', o.inner);
    built.push(o.inner.kind);
    d.dispose();
    return { name: 'test-nested', async init() {}, async step() { return {}; }, variables: () => [], state: () => null, restore() {}, dispose() {} };
  },
});

describe('nested components (componentField)', () => {
  const dir = tmpDir('nested');
  const root = createRootContainer([...builtinModules, contributionModule(outer)]);
  const write = (name: string, stage: string) => {
    const f = path.join(dir, name);
    writeFileSync(f, `name: nested\nteacher: { kind: face-api-resnet34 }\nstudent: { kind: conv-student }\ndata: { kind: sample-faces }\nstages:\n  - name: s\n    steps: 1\n${stage}`);
    return f;
  };

  it('validates a nested component against its own schema and fills its defaults', async () => {
    const f = write('ok.yaml', '    strategy:\n      kind: test-nested\n      inner: { kind: sample-faces, viewsPerFace: 3 }\n      parts:\n        - source: { kind: sample-faces }\n');
    const r = await loadRecipe(f, [], root);
    const st = (mergedRecipe(r) as any).stages[0].strategy;
    expect(st.inner.kind).to.equal('sample-faces');
    expect(st.inner.viewsPerFace).to.equal(3);
    // Defaults of the nested kind come in (sample-faces has more options than the recipe set).
    expect(Object.keys(st.inner).length).to.be.greaterThan(2);
    expect(st.parts[0].weight).to.equal(1);
    expect(Object.keys(st.parts[0].source).length).to.be.greaterThan(1);
  });

  it('an unknown nested kind is located at its key path with the nearest kind', async () => {
    const f = write('bad-kind.yaml', '    strategy:\n      kind: test-nested\n      inner: { kind: sample-face }\n');
    const err = await loadRecipe(f, [], root).then(() => null, (e: unknown) => e);
    expect(err).to.be.instanceOf(RecipeError);
    const msg = (err as Error).message;
    expect(msg).to.contain(`${f}:10:22:`); // the value of inner.kind
    expect(msg).to.contain('stages[0].strategy.inner.kind');
    expect(msg).to.contain('did you mean "sample-faces"');
  });

  it('an unknown key inside a list element\'s nested component is located', async () => {
    const f = write('bad-key.yaml', '    strategy:\n      kind: test-nested\n      inner: { kind: sample-faces }\n      parts:\n        - source: { kind: sample-faces, viewsPerFac: 2 }\n');
    const err = await loadRecipe(f, [], root).then(() => null, (e: unknown) => e);
    const msg = (err as Error).message;
    expect(msg).to.contain(`${f}:12:41:`); // the misspelt key
    expect(msg).to.contain('stages[0].strategy.parts[0].source.viewsPerFac');
    expect(msg).to.contain('did you mean "viewsPerFace"');
  });

  it('the factory builds the nested component through ctx.build', async () => {
    const f = write('ok2.yaml', '    strategy:\n      kind: test-nested\n      inner: { kind: sample-faces, viewsPerFace: 2 }\n');
    const r = await loadRecipe(f, [], root);
    const ctx = contextFor(r.registry, { seed: 0, runDir: dir, cacheDir: path.join(dir, '.cache'), log: stderrLogger(true) });
    const s = r.stages[0]!.strategy;
    const { kind: _k, ...opts } = s.options;
    built.length = 0;
    await s.contribution.create(opts as never, ctx);
    expect(built).to.deep.equal(['sample-faces']);
    await ctx.build('data', { kind: 'nope' }).then(() => expect.fail('should throw'), (e: Error) => expect(e.message).to.contain('no data kind "nope"'));
  });
});
