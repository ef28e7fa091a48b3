import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { builtinModules } from '../../builtins.js';
import { createRootContainer } from '../../core/di/container.js';
import { RecipeError } from '../../core/recipe/errors.js';
import { loadRecipe } from '../../core/recipe/load.js';
import { runCli } from '../helpers/cli.js';
import { tmpDir } from '../helpers/fixtures.js';

const GOOD = `name: ok
teacher: { kind: face-api-resnet34 }
student: { kind: conv-student, inputSize: 32 }
data: { kind: sample-faces }
stages:
  - name: s1
    strategy: { kind: feature-kd }
    steps: 10
`;

interface Case {
  readonly why: string;
  readonly yaml: string;
  readonly sets?: readonly string[];
  /** line:column expected in the message (the --set text instead, for overrides). */
  readonly at: string;
  readonly key: string;
  readonly says: string;
  readonly suggests?: string;
}

const CASES: readonly Case[] = [
  { why: 'unknown top-level key', yaml: GOOD.replace('name: ok', 'name: ok\nsead: 3'), at: ':2:1', key: 'sead', says: 'unknown key "sead"', suggests: 'seed' },
  { why: 'unknown key in a stage', yaml: GOOD.replace('steps: 10', 'steps: 10\n    batchsize: 8'), at: ':9:5', key: 'stages[0].batchsize', says: 'unknown key', suggests: 'batchSize' },
  { why: 'unknown strategy option', yaml: GOOD.replace('{ kind: feature-kd }', '{ kind: feature-kd, los: mse }'), at: ':7:35', key: 'stages[0].strategy.los', says: 'unknown key "los"', suggests: 'loss' },
  { why: 'unknown teacher kind', yaml: GOOD.replace('face-api-resnet34', 'face-api-resnet43'), at: ':2:18', key: 'teacher.kind', says: 'unknown teacher kind', suggests: 'face-api-resnet34' },
  { why: 'unknown strategy kind', yaml: GOOD.replace('feature-kd', 'featur-kd'), at: ':7:23', key: 'stages[0].strategy.kind', says: 'unknown strategy kind', suggests: 'feature-kd' },
  { why: 'unknown data kind', yaml: GOOD.replace('sample-faces', 'imagefolder'), at: ':4:15', key: 'data.kind', says: 'unknown data kind', suggests: 'image-folder' },
  { why: 'wrong type: steps as string', yaml: GOOD.replace('steps: 10', 'steps: ten'), at: ':8:12', key: 'stages[0].steps', says: 'expected number, got string "ten"' },
  { why: 'wrong type: seed float', yaml: GOOD.replace('name: ok', 'name: ok\nseed: 1.5'), at: ':2:7', key: 'seed', says: 'expected int' },
  { why: 'negative learning rate', yaml: GOOD.replace('steps: 10', 'steps: 10\n    optimizer: { kind: adam, lr: -1 }'), at: ':9:34', key: 'stages[0].optimizer.lr', says: '>0' },
  { why: 'unknown optimizer kind', yaml: GOOD.replace('steps: 10', 'steps: 10\n    optimizer: { kind: adamw }'), at: ':9:24', key: 'stages[0].optimizer.kind', says: 'unknown kind string "adamw"; expected one of: adam, sgd', suggests: 'adam' },
  { why: 'bad backend value', yaml: GOOD.replace('name: ok', 'name: ok\nbackend: wsam'), at: ':2:10', key: 'backend', says: 'expected one of', suggests: 'wasm' },
  { why: 'missing teacher', yaml: GOOD.replace('teacher: { kind: face-api-resnet34 }\n', ''), at: ':1:1', key: 'teacher', says: 'required key missing' },
  { why: 'missing steps', yaml: GOOD.replace('    steps: 10\n', ''), at: ':6:5', key: 'stages[0].steps', says: 'required key missing' },
  { why: 'stages not a list', yaml: GOOD.replace(/stages:[\s\S]*/, 'stages: 3\n'), at: ':5:9', key: 'stages', says: 'expected array' },
  { why: 'empty stage list', yaml: GOOD.replace(/stages:[\s\S]*/, 'stages: []\n'), at: ':5:9', key: 'stages', says: '>=1' },
  { why: 'missing image folder', yaml: GOOD.replace('{ kind: sample-faces }', '{ kind: image-folder, root: /nonexistent/faces }'), at: ':4:35', key: 'data.root', says: 'folder not found: /nonexistent/faces' },
  { why: 'missing model file', yaml: GOOD.replace('{ kind: face-api-resnet34 }', '{ kind: layers-model, path: nowhere/model.json }'), at: ':2:38', key: 'teacher.path', says: 'file not found' },
  { why: 'bad run name', yaml: GOOD.replace('name: ok', 'name: "my run/1"'), at: ':1:7', key: 'name', says: 'names a folder' },
  { why: 'duplicate stage names', yaml: GOOD + '  - name: s1\n    strategy: { kind: feature-kd }\n    steps: 5\n', at: ':9:11', key: 'stages[1].name', says: 'duplicate stage name' },
  { why: 'YAML syntax error', yaml: GOOD.replace('steps: 10', 'steps: [10'), at: ':', key: '', says: 'YAML syntax error' },
  { why: 'top level not a mapping', yaml: '- just\n- a list\n', at: ':1:1', key: '', says: 'expected a mapping' },
  { why: 'missing base recipe', yaml: 'extends: nothere.yaml\n' + GOOD, at: ':1:10', key: 'extends', says: 'file not found' },
  { why: 'bad --set value type', yaml: GOOD, sets: ['stages.0.batchSize=big'], at: '--set stages.0.batchSize=big', key: 'stages[0].batchSize', says: 'expected number' },
  { why: 'unknown key through --set', yaml: GOOD, sets: ['stages.0.stpes=3'], at: '--set stages.0.stpes=3', key: 'stages[0].stpes', says: 'unknown key', suggests: 'steps' },
  { why: 'unknown cosine option', yaml: GOOD.replace('steps: 10', 'steps: 10\n    schedule: { kind: cosine, minlr: 0 }'), at: ':9:31', key: 'stages[0].schedule.minlr', says: 'unknown key', suggests: 'minLr' },
  { why: 'plugin file missing', yaml: 'plugins: [./no/such/plugin.js]\n' + GOOD, at: ':1:11', key: 'plugins[0]', says: 'plugin file not found' },
  { why: 'stages without student', yaml: GOOD.replace('student: { kind: conv-student, inputSize: 32 }\n', ''), at: ':1:1', key: 'student', says: 'needs a `student:`' },
  { why: 'feature-kd loss not allowed', yaml: GOOD.replace('{ kind: feature-kd }', '{ kind: feature-kd, loss: l1 }'), at: ':7:41', key: 'stages[0].strategy.loss', says: 'expected one of' },
];

describe('recipe errors: located, explained, nothing written', () => {
  const dir = tmpDir('recipes');
  const root = createRootContainer(builtinModules);

  for (const [i, c] of CASES.entries()) {
    it(`${i + 1}. ${c.why}`, async () => {
      const file = path.join(dir, `case${i + 1}.yaml`);
      writeFileSync(file, c.yaml);
      let err: unknown;
      try { await loadRecipe(file, c.sets ?? [], root); } catch (e) { err = e; }
      expect(err, 'expected a RecipeError').to.be.instanceOf(RecipeError);
      const msg = (err as RecipeError).message;
      expect(msg.startsWith(file), msg).to.equal(true);
      expect(msg, msg).to.include(c.at);
      if (c.key) expect(msg, msg).to.include(` ${c.key}:`);
      expect(msg, msg).to.include(c.says);
      if (c.suggests) expect(msg, msg).to.include(`(did you mean "${c.suggests}"?)`);
    });
  }

  it('has at least 20 distinct malformed recipes', () => {
    expect(new Set(CASES.map((c) => c.yaml + (c.sets ?? []).join())).size).to.be.at.least(20);
  });

  it('the CLI exits 2 with one located line and creates no run folder', () => {
    const cwd = tmpDir('cli-bad');
    writeFileSync(path.join(cwd, 'bad.yaml'), GOOD.replace('steps: 10', 'steps: ten'));
    const r = runCli(['run', 'bad.yaml'], { cwd });
    expect(r.status).to.equal(2);
    expect(r.stderr.trim().split('\n')).to.have.length(1);
    expect(r.stderr).to.include('bad.yaml:8:12: stages[0].steps: expected number');
    expect(existsSync(path.join(cwd, 'runs'))).to.equal(false);
  });
});
