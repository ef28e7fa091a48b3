import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { builtinModules } from '../../builtins.js';
import { createRootContainer } from '../../core/di/container.js';
import { loadRecipe } from '../../core/recipe/load.js';
import { mergedRecipe } from '../../core/recipe/validate.js';
import { runCli } from '../helpers/cli.js';
import { tmpDir } from '../helpers/fixtures.js';

const BASE = `name: base
seed: 1
teacher: { kind: face-api-resnet34 }
student: { kind: conv-student, inputSize: 32, widths: [8, 16] }
data: { kind: sample-faces, viewsPerFace: 4 }
stages:
  - name: warm
    strategy: { kind: feature-kd, loss: cosine }
    steps: 10
    optimizer: { kind: sgd, lr: 0.05 }
`;

describe('recipes: defaults, extends, --set, plan, schema', () => {
  const dir = tmpDir('recipe');
  const root = createRootContainer(builtinModules);
  const base = path.join(dir, 'base.yaml');
  writeFileSync(base, BASE);

  it('fills defaults from the schemas beside each component', async () => {
    const r = await loadRecipe(base, [], root);
    const m = mergedRecipe(r) as any;
    expect(m.backend).to.equal('auto');
    expect(m.stages[0].batchSize).to.equal(16);
    expect(m.stages[0].optimizer).to.deep.equal({ kind: 'sgd', lr: 0.05, momentum: 0.9, nesterov: false, weightDecay: 5e-4 });
    expect(m.stages[0].strategy).to.deep.equal({ kind: 'feature-kd', loss: 'cosine', weight: 1, projection: 'auto' });
    expect(m.student).to.deep.equal({ kind: 'conv-student', inputSize: 32, widths: [8, 16], embeddingDim: 128 });
  });

  it('extends: one level, mappings merge key by key, lists replace', async () => {
    const child = path.join(dir, 'child.yaml');
    writeFileSync(child, `extends: base.yaml\nname: child\nstudent: { inputSize: 48 }\nstages:\n  - name: only\n    strategy: { kind: feature-kd }\n    steps: 3\n`);
    const m = mergedRecipe(await loadRecipe(child, [], root)) as any;
    expect(m.name).to.equal('child');
    expect(m.seed).to.equal(1);
    expect(m.student).to.deep.include({ kind: 'conv-student', inputSize: 48, widths: [8, 16] });
    expect(m.stages.map((s: any) => s.name)).to.deep.equal(['only']);
    const grand = path.join(dir, 'grand.yaml');
    writeFileSync(grand, 'extends: child.yaml\nname: grand\n');
    let err: Error | undefined;
    try { await loadRecipe(grand, [], root); } catch (e) { err = e as Error; }
    expect(err?.message).to.include('child.yaml:1:10: extends: a base recipe cannot extend another one');
  });

  it('--set overrides nested keys, list items and parses YAML scalars', async () => {
    const r = await loadRecipe(base, ['stages.0.steps=25', 'seed=9', 'stages.0.strategy.loss=mse', 'student.widths=[4, 8, 16]', 'backend=cpu'], root);
    const m = mergedRecipe(r) as any;
    expect(m.stages[0].steps).to.equal(25);
    expect(m.seed).to.equal(9);
    expect(m.stages[0].strategy.loss).to.equal('mse');
    expect(m.student.widths).to.deep.equal([4, 8, 16]);
    expect(m.backend).to.equal('cpu');
  });

  it('the recipe hash changes with anything that changes results, not with key order', async () => {
    const h0 = (await loadRecipe(base, [], root)).hash;
    const reordered = path.join(dir, 'reordered.yaml');
    writeFileSync(reordered, BASE.split('\n').slice(0, 5).reverse().join('\n') + '\n' + BASE.split('\n').slice(5).join('\n'));
    expect((await loadRecipe(reordered, [], root)).hash).to.equal(h0);
    expect((await loadRecipe(base, ['seed=2'], root)).hash).to.not.equal(h0);
    expect((await loadRecipe(base, ['stages.0.batchSize=16'], root)).hash, 'explicit default = same recipe').to.equal(h0);
  });

  it('facedistill plan prints the merged recipe, components and schedule, and writes nothing', () => {
    const r = runCli(['plan', base, '--set', 'stages.0.steps=40'], { cwd: dir });
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).to.include('# merged recipe');
    expect(r.stdout).to.match(/student\s+conv-student/);
    expect(r.stdout).to.include('1. warm: feature-kd, 40 steps × batch 16 = 640 images; sgd lr 0.05');
    expect(r.stdout).to.include('run folder: runs/base/');
  });

  it('facedistill schema --plugin adds the plugin\'s kinds; a missing plugin exits 2 naming it', () => {
    const plugin = 'dist/examples/custom-strategy/hard-cosine-kd.js';
    const without = runCli(['schema']);
    expect(without.stdout).to.not.contain('hard-cosine-kd');
    const r = runCli(['schema', '--plugin', plugin]);
    expect(r.status, r.stderr).to.equal(0);
    const strategies = JSON.stringify(JSON.parse(r.stdout));
    expect(strategies).to.contain('"hard-cosine-kd"');
    const bad = runCli(['schema', '--plugin', 'no/such/plugin.js']);
    expect(bad.status).to.equal(2);
    expect(bad.stderr).to.contain('--plugin no/such/plugin.js: plugin file not found');
    expect(bad.stdout).to.equal('');
  });

  it('facedistill schema exports a JSON Schema naming every registered kind', () => {
    const r = runCli(['schema']);
    expect(r.status, r.stderr).to.equal(0);
    const schema = JSON.parse(r.stdout);
    const text = JSON.stringify(schema);
    for (const kind of ['face-api-resnet34', 'layers-model', 'conv-student', 'image-folder', 'sample-faces', 'lfw-pairs', 'sample-face-pairs', 'insightface-bin', 'folder-pairs', 'recordio', 'feature-kd']) {
      expect(text).to.include(`"const":"${kind}"`);
    }
    expect(schema.properties.stages.items.properties.steps.type).to.equal('integer');
    expect(schema.additionalProperties).to.equal(false);
  });

  it('--help shows an example for each command', () => {
    for (const cmd of ['run', 'plan', 'eval', 'schema']) {
      const r = runCli([cmd, '--help']);
      expect(r.stdout, cmd).to.match(/Example:\n\s+npx facedistill /);
    }
  });
});
