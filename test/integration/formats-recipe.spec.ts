import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { builtinModules } from '../../builtins.js';
import { createRootContainer } from '../../core/di/container.js';
import { runRecipe } from '../../core/engine/run.js';
import { loadRecipe } from '../../core/recipe/load.js';
import { stderrLogger } from '../../core/util/logger.js';
import { makeTinyTeacher, tmpDir } from '../helpers/fixtures.js';
import { pythonMissing, synthJpeg } from '../helpers/jpegs.js';

// The three formats wired through a recipe: recordio trains, insightface-bin and folder-pairs evaluate.
describe('recipes over recordio, insightface-bin and folder-pairs', function () {
  this.timeout(300_000);

  it('a recordio-trained run evaluates on a .bin pack; the report names the pack and the skipped record', async function () {
    const why = pythonMissing(['numpy']);
    if (why) { console.warn(`    skipped: ${why}`); this.skip(); }
    const dir = tmpDir('formats');
    const jp = (i: number) => synthJpeg(24, [(i * 41) % 256, (i * 83) % 256, (i * 29) % 256]);
    mkdirSync(path.join(dir, 'rec')); mkdirSync(path.join(dir, 'bin'));
    for (let i = 0; i < 12; i++) writeFileSync(path.join(dir, 'rec', `j${i}.jpg`), await jp(i));
    for (let i = 0; i < 24; i++) writeFileSync(path.join(dir, 'bin', `j${i}.jpg`), await jp(i % 12)); // pairs 0-5 genuine (same JPEG twice)
    writeFileSync(path.join(dir, 'bin', 'issame.json'), JSON.stringify(Array.from({ length: 12 }, (_, i) => i % 2 === 0)));
    execFileSync('python3', [path.resolve('test/fixtures/make_recordio.py'), path.join(dir, 'rec')], { stdio: 'pipe' });
    execFileSync('python3', [path.resolve('test/fixtures/make_bin_packs.py'), path.join(dir, 'bin')], { stdio: 'pipe' });
    const teacher = await makeTinyTeacher(path.join(dir, 'teacher'), 24, 32);
    const file = path.join(dir, 'r.yaml');
    writeFileSync(file, `name: formats
seed: 3
backend: cpu
runsDir: ${path.join(dir, 'runs')}
teacher: { kind: layers-model, path: ${teacher} }
student: { kind: conv-student, inputSize: 16, widths: [8, 16], embeddingDim: 16 }
data: { kind: recordio, root: ${path.join(dir, 'rec', 'pack')}, size: 24 }
eval:
  pairs: { kind: insightface-bin, path: ${path.join(dir, 'bin', 'numpy-p2.bin')}, size: 24 }
  flip: true
stages:
  - name: train
    strategy: { kind: feature-kd }
    steps: 4
    batchSize: 4
    checkpointEvery: 2
`);
    const root = createRootContainer(builtinModules);
    const res = await runRecipe(await loadRecipe(file, [], root), { root, log: stderrLogger(true), progress: false });
    expect(res.teacher!.pairs).to.equal(12);
    expect(res.teacher!.foldAccuracies).to.have.length(10); // 12 pairs: folds of 2, 2, 1 × 8
    const report = readFileSync(path.join(res.dir, 'report.md'), 'utf8');
    expect(report).to.include('insightface pack numpy-p2.bin');
    // The unreadable record (key 13) is drawn within 4 batches of 4 over 13 keys: reported as skipped.
    expect(report).to.match(/recordio .*: 13 images, 3 identities, 1 skipped/);
  });

  it('folder-pairs in an eval recipe: the kind resolves and a bad option is an error naming its key', async () => {
    const dir = tmpDir('formats2');
    for (const [id, n] of [['A', 3], ['B', 3], ['C', 4]] as const) {
      mkdirSync(path.join(dir, 'faces', id), { recursive: true });
      for (let i = 0; i < n; i++) writeFileSync(path.join(dir, 'faces', id, `${i}.jpg`), await synthJpeg(16, [id.charCodeAt(0) * 2, 40 * i, 90]));
    }
    const file = path.join(dir, 'e.yaml');
    writeFileSync(file, `name: fp
teacher: { kind: layers-model, path: ${await makeTinyTeacher(path.join(dir, 'teacher'), 24, 32)} }
eval:
  pairs: { kind: folder-pairs, root: ${path.join(dir, 'faces')}, size: 24, impostorRatio: 2 }
`);
    const root = createRootContainer(builtinModules);
    const recipe = await loadRecipe(file, [], root);
    expect(recipe.evalPairs).to.deep.include({ kind: 'folder-pairs' });
    let err = '';
    try {
      writeFileSync(file, readFileSync(file, 'utf8').replace('impostorRatio: 2', 'impostorRatio: 0'));
      await loadRecipe(file, [], root);
    } catch (e) { err = (e as Error).message; }
    expect(err).to.match(/eval\.pairs\.impostorRatio/);
  });
});
