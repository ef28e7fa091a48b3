import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { builtinModules } from '../../builtins.js';
import { expandCells, planRuns } from '../../core/ablation/cells.js';
import { readAblation } from '../../core/ablation/spec.js';
import { createRootContainer } from '../../core/di/container.js';
import { RecipeError } from '../../core/recipe/errors.js';
import { ablationFixture, type AblationFixture } from '../helpers/ablation-fixture.js';
import { runCli } from '../helpers/cli.js';

const rootFor = () => createRootContainer(builtinModules);

describe('ablation files', function () {
  this.timeout(60_000);
  let f: AblationFixture;
  before(async () => { f = await ablationFixture('ablation-spec'); });

  const write = (name: string, body: string) => {
    const file = path.join(f.dir, name);
    writeFileSync(file, `name: ${name.replace('.yaml', '')}\nbase: base.yaml\nrunsDir: ${f.runsDir}\n${body}`);
    return file;
  };
  const errorOf = async (fn: () => unknown): Promise<RecipeError> => {
    try { await fn(); } catch (e) { if (e instanceof RecipeError) return e; throw e; }
    throw new Error('expected a RecipeError');
  };

  it('expands a grid (first factor slowest) and one factor at a time around the baseline', () => {
    const factors = `factors:
  loss:
    mse: { stages.0.strategy.loss: mse }
    cosine: { stages.0.strategy.loss: cosine }
  width:
    narrow: { student.widths: [8, 16] }
    mid: { student.widths: [12, 24] }
    wide: { student.widths: [16, 32] }
`;
    const grid = readAblation(write('grid.yaml', factors + 'seeds: 3\n'));
    expect(grid.seeds).to.deep.equal([0, 1, 2]);
    expect(expandCells(grid).map((c) => c.id)).to.deep.equal(['mse_narrow', 'mse_mid', 'mse_wide', 'cosine_narrow', 'cosine_mid', 'cosine_wide']);
    expect(expandCells(grid).filter((c) => c.isBaseline).map((c) => c.id)).to.deep.equal(['mse_narrow']);
    const oat = readAblation(write('oat.yaml', factors + 'design: one-at-a-time\nbaseline: { width: mid }\n'));
    const cells = expandCells(oat);
    expect(cells.map((c) => c.id)).to.deep.equal(['mse_mid', 'cosine_mid', 'mse_narrow', 'mse_wide']);
    expect(cells[0]!.isBaseline).to.equal(true);
    expect(cells[1]!.sets.map((s) => s.set)).to.deep.equal(['stages.0.strategy.loss="cosine"', 'student.widths=[12,24]']);
  });

  it('plans every run with its merged recipe: one shared cache, the seed set, distinct hashes', async () => {
    const spec = readAblation(write('plan.yaml', `set: { stages.0.steps: 3 }
factors:
  loss: { mse: { stages.0.strategy.loss: mse }, cosine: { stages.0.strategy.loss: cosine } }
seeds: [4, 9]
`));
    const { runs, layout } = await planRuns(spec, rootFor);
    expect(runs.map((r) => r.name)).to.deep.equal(['mse_s4', 'cosine_s4', 'mse_s9', 'cosine_s9']);
    expect(new Set(runs.map((r) => r.recipe.hash)).size).to.equal(4);
    for (const r of runs) {
      expect(r.recipe.shape.cacheDir).to.equal(path.join(f.runsDir, '.cache'));
      expect(r.recipe.stages[0]!.recipe.steps).to.equal(3);
      expect(r.dir).to.equal(path.join(f.runsDir, 'plan', 'cells', r.name));
    }
    expect(runs.map((r) => r.recipe.shape.seed)).to.deep.equal([4, 4, 9, 9]);
    expect(runs[1]!.recipe.stages[0]!.strategy.options.loss).to.equal('cosine');
    expect(layout.root).to.equal(path.join(f.runsDir, 'plan'));
  });

  it('locates a bad override in the ablation file and names the cell', async () => {
    const file = write('bad-level.yaml', `factors:
  loss:
    mse: { stages.0.strategy.loss: mse }
    cosine:
      stages.0.strategy.loss: cosin
`);
    const e = await errorOf(() => planRuns(readAblation(file), rootFor));
    expect(e.message).to.contain(`${file}:8:7:`);
    expect(e.message).to.contain('stages[0].strategy.loss: expected one of "mse", "mse-normalised", "cosine"');
    expect(e.message).to.contain('cell cosine, override stages.0.strategy.loss');
    expect(e.message).to.contain('did you mean "cosine"');
  });

  it('refuses unknown keys, reserved keys, clashing factors and unknown baselines, with locations', async () => {
    let e = await errorOf(() => readAblation(write('e1.yaml', 'factors: { a: { x: {} } }\nseed: [1]\n')));
    expect(e.message).to.match(/e1\.yaml:5:1: seed: unknown key "seed".*did you mean "seeds"/);
    e = await errorOf(() => readAblation(write('e2.yaml', 'factors:\n  loss:\n    a: { seed: 3 }\n')));
    expect(e.message).to.match(/e2\.yaml:6:10: factors\.loss\.a\.seed: level loss\.a cannot set "seed"/);
    e = await errorOf(() => readAblation(write('e3.yaml', 'factors:\n  loss:\n    a_b: {}\n')));
    expect(e.message).to.match(/e3\.yaml:6:5: factors\.loss\.a_b: level names .*no "_"/);
    e = await errorOf(() => readAblation(write('e4.yaml', 'factors:\n  loss: { mse: {}, cosine: {} }\nbaseline: { loss: cosin }\n')));
    expect(e.message).to.match(/e4\.yaml:6:19: baseline\.loss: unknown level "cosin".*did you mean "cosine"/);
    e = await errorOf(() => expandCells(readAblation(write('e5.yaml', 'factors:\n  width: { w: { student.widths: [4, 8] } }\n  model: { m: { student: { kind: conv-student } } }\n'))));
    expect(e.message).to.match(/e5\.yaml:6:17: factors\.model\.m: sets student, which level width\.w also sets \(student\.widths\)/);
    const e6 = path.join(f.dir, 'e6.yaml');
    writeFileSync(e6, 'name: e6\nbase: nowhere.yaml\nfactors: { a: { x: {} } }\n');
    e = await errorOf(() => readAblation(e6));
    expect(e.message).to.match(/e6\.yaml:2:7: base: recipe file not found: nowhere\.yaml/);
  });

  it('the CLI exits 2 on a bad ablation and writes nothing', () => {
    const file = write('cli-bad.yaml', 'factors:\n  loss:\n    mse: { stages.0.strategy.los: mse }\n');
    const r = runCli(['ablate', file]);
    expect(r.status, r.stderr).to.equal(2);
    expect(r.stderr).to.match(/^error: .*cli-bad\.yaml:6:12: stages\[0\]\.strategy\.los: unknown key "los".*did you mean "loss"/m);
    expect(existsSync(path.join(f.runsDir, 'cli-bad'))).to.equal(false);
  });

  describe('examples/ablations', () => {
    const dir = 'examples/ablations';
    const files = readdirSync(dir).filter((n) => n.endsWith('.yaml')).map((n) => path.join(dir, n));

    it('every example reads as an ablation file', () => {
      expect(files.length).to.be.at.least(6);
      for (const file of files) expect(readAblation(file).factors.length, file).to.be.at.least(1);
    });

    it('feature-kd-losses (runnable today) plans 2 losses × 2 widths; the short variant keeps the factors', async () => {
      const full = await planRuns(readAblation(path.join(dir, 'feature-kd-losses.yaml')), rootFor);
      expect(full.cells.map((c) => c.id)).to.deep.equal(['mse-normalised_standard', 'mse-normalised_narrow', 'mse_standard', 'mse_narrow']);
      expect(full.runs).to.have.length(12);
      const short = await planRuns(readAblation(path.join(dir, 'feature-kd-losses-short.yaml')), rootFor);
      expect(short.runs.map((r) => r.name)).to.deep.equal([
        'mse-normalised_standard_s0', 'mse-normalised_narrow_s0', 'mse_standard_s0', 'mse_narrow_s0',
        'mse-normalised_standard_s1', 'mse-normalised_narrow_s1', 'mse_standard_s1', 'mse_narrow_s1']);
      const r = short.runs[3]!.recipe;
      expect([r.stages[0]!.recipe.steps, r.stages[0]!.strategy.options.loss, (r.student!.options.widths as number[]).join(',')]).to.deep.equal([60, 'mse', '8,16,32,64']);
    });

    it('the SynthDistill and EKD examples plan: every cell validates against the registered strategies', async function () {
      if (!existsSync('../shared/data/lfw-deepfunneled/pairs.txt') || !existsSync('../shared/data/celeba-crops/images')) {
        console.warn('    skipped: ../shared/data (LFW, CelebA crops) is not present');
        this.skip();
      }
      const sizes: Record<string, number> = {};
      for (const name of ['synthdistill-sampling', 'synthdistill-sampling-short', 'ekd-vs-feature-kd', 'ekd-vs-feature-kd-short', 'strategies']) {
        const plan = await planRuns(readAblation(path.join(dir, `${name}.yaml`)), rootFor);
        sizes[name] = plan.cells.length;
      }
      expect(sizes).to.deep.equal({ 'synthdistill-sampling': 3, 'synthdistill-sampling-short': 3, 'ekd-vs-feature-kd': 3, 'ekd-vs-feature-kd-short': 3, strategies: 12 });
    });
  });
});
