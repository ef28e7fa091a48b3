// Malformed recipes and --set overrides, generated from one good recipe: every one must be
// refused with exit 2, one line naming where (file:line:column, or the --set), no stack, and
// nothing written (the runs folder never appears).
import { existsSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { parse, stringify } from 'yaml';
import { builtinModules } from '../../builtins.js';
import { main } from '../../core/cli/main.js';
import { imageFolder, imageFolderOptions } from '../../data-sources/image-folder/image-folder.js';
import { makeIdentityFolder, makeTinyTeacher, testContext, tmpDir, writePairsFile } from '../helpers/fixtures.js';

/** Runs the CLI in this process (no child: ~100 cases stay fast); returns the exit code and what it printed on stderr. */
async function cli(args: string[]): Promise<{ code: number; stderr: string }> {
  let stderr = '';
  const write = process.stderr.write.bind(process.stderr), out = process.stdout.write.bind(process.stdout);
  process.stderr.write = ((chunk: string | Uint8Array) => { stderr += String(chunk); return true; }) as typeof process.stderr.write;
  process.stdout.write = (() => true) as typeof process.stdout.write;
  try {
    return { code: await main(args, builtinModules), stderr };
  } finally {
    process.stderr.write = write;
    process.stdout.write = out;
  }
}

type Value = unknown;
/** [key path, bad value, what the case is]: applied once as --set and once written into the YAML. */
const MUTATIONS: [string, Value, string][] = [
  ['name', '', 'empty run name'], ['name', 'a/b', 'run name with a slash'], ['name', ['x'], 'run name as a list'],
  ['seed', -1, 'negative seed'], ['seed', 1.5, 'fractional seed'], ['seed', 'seven', 'seed as text'],
  ['backend', 'gpu', 'unknown backend'], ['runsDir', 5, 'runsDir as a number'],
  ['plugins', 'x.js', 'plugins as a string'], ['plugins', [5], 'a plugin as a number'], ['plugins', ['no-such-plugin.js'], 'a missing plugin'],
  ['bogus', 1, 'unknown top-level key'], ['Stages', [], 'key in the wrong case'],
  ['teacher', 'x', 'teacher as a string'], ['teacher.kind', 'no-such-teacher', 'unknown teacher kind'], ['teacher.path', '/no/such/model.json', 'missing teacher file'],
  ['teacher.extra', 1, 'unknown teacher option'],
  ['student.kind', 'no-such-student', 'unknown student kind'], ['student.inputSize', 0, 'zero input size'], ['student.inputSize', 'big', 'input size as text'],
  ['student.widths', 'x', 'widths as text'], ['student.embeddingDim', -3, 'negative embedding size'], ['student.bogus', 1, 'unknown student option'],
  ['data', 5, 'data as a number'], ['data.kind', 'no-such-data', 'unknown data kind'], ['data.root', '/no/such/folder', 'missing data folder'],
  ['data.size', 4, 'image size below the minimum'], ['data.size', 10000, 'image size above the maximum'], ['data.layout', 'tree', 'unknown layout'],
  ['data.limit', 0, 'zero limit'], ['data.holdout', { share: 1.5, use: 'train' }, 'holdout share above 1'], ['data.holdout', { share: 0.5, use: 'test' }, 'unknown holdout part'],
  ['data.align', 'seven-point', 'unknown alignment'], ['data.sampler', { kind: 'random' }, 'unknown sampler'], ['data.minPerIdentity', 0, 'zero minPerIdentity'],
  ['eval', 'yes', 'eval as text'], ['eval.pairs.kind', 'no-such-pairs', 'unknown pairs kind'], ['eval.pairs.pairsFile', '/no/such/pairs.txt', 'missing pairs file'],
  ['eval.flip', 'yes', 'flip as text'], ['eval.batchSize', 0, 'zero eval batch'], ['eval.batchSize', 1e9, 'a billion-image eval batch'],
  ['eval.far', [2], 'FAR above 1'], ['eval.every', 0, 'eval every 0 steps'], ['eval.every', 1.5, 'eval every 1.5 steps'], ['eval.extra', 1, 'unknown eval key'],
  ['stages', [], 'no stages'], ['stages', 'x', 'stages as text'], ['stages.0.name', '', 'empty stage name'],
  ['stages.0.steps', 0, 'zero steps'], ['stages.0.steps', -5, 'negative steps'], ['stages.0.steps', 1.5, 'fractional steps'],
  ['stages.0.batchSize', 0, 'zero batch'], ['stages.0.batchSize', 1e9, 'a billion-image batch'],
  ['stages.0.strategy', 'feature-kd', 'strategy as a string'], ['stages.0.strategy.kind', 'no-such-strategy', 'unknown strategy'], ['stages.0.strategy.loss', 'l3', 'unknown loss'],
  ['stages.0.strategy.weight', -1, 'negative weight'], ['stages.0.optimizer.kind', 'rmsprop2', 'unknown optimiser'], ['stages.0.optimizer.lr', 0, 'zero learning rate'],
  ['stages.0.optimizer.lr', -1, 'negative learning rate'], ['stages.0.schedule.kind', 'zigzag', 'unknown schedule'], ['stages.0.checkpointEvery', 0, 'checkpoint every 0 steps'],
  ['stages.0.bogus', 1, 'unknown stage key'], ['stages.0.teacher', { kind: 'from-stage', stage: 'later' }, 'from-stage naming no earlier stage'],
];

/** Cases only --set can make: paths that do not fit the recipe's shape. */
const SET_ONLY: [string, string][] = [
  ['stages.5.steps=1', 'an index past the end of stages'], ['stages.x=1', 'a key into a list'], ['stages.0.strategy.loss.x=1', 'a key under a value'],
  ['stages.1.name=b', 'a new stage without a strategy'], ['teacher.kind.deeper=1', 'a key under the teacher kind'], ['foo.bar=1', 'an unknown key on the way'],
  ['stages.0.steps', 'no = sign'], ['=5', 'no key'], ['stages.0.steps=[1', 'a value that is not YAML'],
];

describe('faults: malformed recipes and --set overrides', function () {
  this.timeout(600_000);
  let dir: string, good: Record<string, unknown>, runs: string;

  before(async () => {
    dir = tmpDir('bad-recipes');
    const faces = await makeIdentityFolder(path.join(dir, 'faces'), 4, 4, 32);
    const teacher = await makeTinyTeacher(path.join(dir, 'teacher'), 24, 32);
    const pairs = writePairsFile(path.join(dir, 'pairs.txt'), 4, 4);
    runs = path.join(dir, 'runs');
    good = {
      name: 'good', seed: 1, backend: 'cpu', runsDir: runs,
      teacher: { kind: 'layers-model', path: teacher },
      student: { kind: 'conv-student', inputSize: 16, widths: [8, 16], embeddingDim: 16 },
      data: { kind: 'image-folder', root: faces, size: 32 },
      eval: { pairs: { kind: 'lfw-pairs', root: faces, pairsFile: pairs, size: 32 } },
      stages: [{ name: 'train', strategy: { kind: 'feature-kd', loss: 'mse-normalised' }, steps: 2, batchSize: 4, optimizer: { kind: 'adam', lr: 0.01 }, schedule: { kind: 'constant' } }],
    };
    writeFileSync(path.join(dir, 'good.yaml'), stringify(good));
  });

  afterEach(() => expect(existsSync(runs), 'nothing written: the runs folder does not exist').to.equal(false));

  const refused = (r: { code: number; stderr: string }, where: RegExp) => {
    expect(r.code, r.stderr).to.equal(2);
    expect(r.stderr.split('\n').filter((l) => l.trim() !== '')).to.have.length(1, r.stderr);
    expect(r.stderr).to.match(/^error: /);
    expect(r.stderr).to.match(where);
    expect(r.stderr).to.not.match(/\n\s+at /);
  };

  it('the good recipe is good (plan exits 0)', async () => {
    const r = await cli(['plan', path.join(dir, 'good.yaml')]);
    expect(r.code, r.stderr).to.equal(0);
  });

  for (const [key, value, what] of MUTATIONS) {
    it(`--set ${key}=… (${what}): exit 2 at the --set`, async () => {
      refused(await cli(['run', '--quiet', path.join(dir, 'good.yaml'), '--set', `${key}=${JSON.stringify(value)}`]), /good\.yaml \(--set [^)]+\): /);
    });
    it(`in the file: ${key} (${what}): exit 2 at its line`, async () => {
      const v = parse(stringify(good)) as Record<string, unknown>;
      const keys = key.split('.');
      let cur: Record<string, unknown> = v;
      for (const k of keys.slice(0, -1)) cur = cur[k] as Record<string, unknown>;
      cur[keys.at(-1)!] = value;
      const file = path.join(dir, `bad-${key.replace(/\W+/g, '-')}-${MUTATIONS.findIndex((m) => m[2] === what)}.yaml`);
      writeFileSync(file, stringify(v));
      refused(await cli(['run', '--quiet', file]), new RegExp(`${path.basename(file).replace(/[.]/g, '\\.')}:\\d+:\\d+: `));
    });
  }

  for (const [set, what] of SET_ONLY) {
    it(`--set ${set} (${what}): exit 2 naming the --set`, async () => {
      refused(await cli(['run', '--quiet', path.join(dir, 'good.yaml'), '--set', set]), /--set /);
    });
  }

  const files: [string, (d: string) => string, RegExp][] = [
    ['the recipe is a folder', (d) => { mkdirSync(path.join(d, 'afolder'), { recursive: true }); return path.join(d, 'afolder'); }, /afolder: this is a folder; a recipe is a YAML file/],
    ['extends: names a folder', (d) => { mkdirSync(path.join(d, 'afolder'), { recursive: true }); writeFileSync(path.join(d, 'ext.yaml'), 'extends: afolder\nname: x\n'); return path.join(d, 'ext.yaml'); }, /ext\.yaml:1:10: extends: this is a folder/],
    ['a YAML alias bomb', (d) => {
      const rows = ['a: &a [x, x, x, x, x, x, x, x, x]'];
      for (const [p, q] of [['b', 'a'], ['c', 'b'], ['d', 'c'], ['e', 'd'], ['f', 'e'], ['g', 'f']]) rows.push(`${p}: &${p} [${Array(9).fill(`*${q}`).join(', ')}]`);
      writeFileSync(path.join(d, 'bomb.yaml'), rows.join('\n') + '\nname: bomb\n');
      return path.join(d, 'bomb.yaml');
    }, /bomb\.yaml:1:1: the YAML cannot be expanded/],
    ['a YAML syntax error', (d) => { writeFileSync(path.join(d, 'syntax.yaml'), 'name: x\nstages: [\n'); return path.join(d, 'syntax.yaml'); }, /syntax\.yaml:\d+:\d+: YAML syntax error/],
    ['a duplicated key', (d) => { writeFileSync(path.join(d, 'dup.yaml'), 'name: x\nname: y\n'); return path.join(d, 'dup.yaml'); }, /dup\.yaml:\d+:\d+: YAML syntax error/],
    ['a list at the top level', (d) => { writeFileSync(path.join(d, 'list.yaml'), '- name: x\n'); return path.join(d, 'list.yaml'); }, /list\.yaml:1:1: expected a mapping/],
    ['an empty file', (d) => { writeFileSync(path.join(d, 'empty.yaml'), ''); return path.join(d, 'empty.yaml'); }, /empty\.yaml:1:1: expected a mapping/],
    ['a missing recipe', (d) => path.join(d, 'nope.yaml'), /nope\.yaml: recipe file not found/],
  ];
  for (const [what, make, where] of files) {
    it(`${what}: exit 2 with the place`, async () => { refused(await cli(['run', '--quiet', make(dir)]), where); });
  }

  const withGood = (extra: Record<string, unknown>) => {
    const file = path.join(dir, `with-${Object.keys(extra).join('-')}-${Math.abs(JSON.stringify(extra).split('').reduce((h, c) => (h * 31 + c.charCodeAt(0)) | 0, 7))}.yaml`);
    writeFileSync(file, stringify({ ...good, ...extra }));
    return file;
  };

  it('a plugin whose ContainerModule throws while loading: exit 2 at its plugins entry', async () => {
    refused(await cli(['run', '--quiet', withGood({ plugins: [path.resolve('dist/test/fixtures/plugins/throws-on-load.js')] })]), /:\d+:\d+: plugins\[0\]: the plugin's ContainerModule failed while loading: this plugin is broken on purpose/);
  });

  it('a plugin registering a kind that exists: exit 2 at its plugins entry, naming the kind', async () => {
    refused(await cli(['run', '--quiet', withGood({ plugins: [path.resolve('dist/test/fixtures/plugins/duplicate-kind.js')] })]), /plugins\[0\]: .*registers strategy kind "feature-kd", which is already registered/);
  });

  it('runsDir under a file: exit 2 at runsDir saying it cannot be written', async () => {
    writeFileSync(path.join(dir, 'a-file'), 'x');
    refused(await cli(['run', '--quiet', withGood({ runsDir: path.join(dir, 'a-file', 'runs') })]), /runsDir: cannot write under .*a-file\/runs \(ENOTDIR/);
  });

  it('an image folder with no usable image (found when the data is read): exit 2 at data, before the run folder exists', async () => {
    const empty = path.join(dir, 'no-images', 'Person_1');
    mkdirSync(empty, { recursive: true });
    writeFileSync(path.join(empty, 'a.jpg'), 'not a jpeg');
    refused(await cli(['run', '--quiet', withGood({ data: { kind: 'image-folder', root: path.dirname(empty), size: 32 } })]), /:\d+:\d+: data: image-folder: no usable images/);
  });

  it('a file given as an image-folder root (found when the data is read): exit 2 at data.root\'s component', async () => {
    writeFileSync(path.join(dir, 'not-a-folder.jpg'), 'x');
    refused(await cli(['run', '--quiet', withGood({ data: { kind: 'image-folder', root: path.join(dir, 'not-a-folder.jpg'), size: 32 } })]), /:\d+:\d+: data(\.root)?: .*(not a folder|ENOTDIR|folder)/);
  });

  it('identity folders that are symbolic links are read like folders (not silently ignored)', async () => {
    const real = (good.data as { root: string }).root;
    const linked = path.join(dir, 'linked-faces');
    mkdirSync(linked, { recursive: true });
    for (const id of ['Person_1', 'Person_2', 'Person_3', 'Person_4']) symlinkSync(path.join(real, id), path.join(linked, id), 'dir');
    const r = await cli(['plan', withGood({ data: { kind: 'image-folder', root: linked, size: 32 } })]);
    expect(r.code, r.stderr).to.equal(0);
    const src = await imageFolder.create(imageFolderOptions.parse({ root: linked, size: 32 }), testContext(dir));
    const info = await src.init();
    src.dispose();
    expect([info.images, info.identities]).to.deep.equal([16, 4]);
  });

  it('a sampler the data cannot serve (8 identities per batch from 4): exit 2 at data when the data is read', async () => {
    refused(await cli(['run', '--quiet', withGood({ data: { ...(good.data as object), sampler: { kind: 'pk', identities: 8, perIdentity: 2 } } })]), /:\d+:\d+: data: P×K sampler: 8 identities per batch, but the data has only 4/);
  });

  it('a pairs file naming images that do not exist (found when the pairs are read): exit 2 at eval.pairs', async () => {
    const pf = path.join(dir, 'bad-pairs.txt');
    writeFileSync(pf, '1\nNobody\t1\t2\nNobody\t1\tNoone\t1\n');
    refused(await cli(['run', '--quiet', withGood({ eval: { pairs: { kind: 'lfw-pairs', root: (good.data as { root: string }).root, pairsFile: pf, size: 32 }, every: 1 } })]), /eval\.pairs: /);
  });
});
