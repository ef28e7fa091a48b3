import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import sharp from 'sharp';
import { LandmarkCache } from '../../core/images/face-aligner.js';
import { templateFor } from '../../core/images/align.js';
import { FaceLandmarker } from '../../core/images/landmarks.js';
import { imageFolder, imageFolderOptions, listIdentityFolder } from '../../data-sources/image-folder/image-folder.js';
import { testContext, tmpDir } from '../helpers/fixtures.js';

const FFHQ = path.resolve('../shared/data/ffhq-thumbs-5k/images');
const FACES = ['00000.jpg', '00001.jpg', '00002.jpg'];

/** A flat folder: 3 FFHQ faces, a text file named .jpg and a uniform grey image (no face). */
async function flatFolder(dir: string): Promise<string> {
  const root = path.join(dir, 'faces');
  mkdirSync(root, { recursive: true });
  for (const f of FACES) copyFileSync(path.join(FFHQ, f), path.join(root, f));
  writeFileSync(path.join(root, 'broken.jpg'), 'not an image\n');
  await sharp({ create: { width: 128, height: 128, channels: 3, background: { r: 128, g: 128, b: 128 } } }).jpeg().toFile(path.join(root, 'grey.jpg'));
  return root;
}

describe('aligned training folders (image-folder align: five-point | dlib-chip, layout: flat)', function () {
  before(function () {
    if (!existsSync(FFHQ)) { console.log(`    skipped: ${FFHQ} is absent (FFHQ thumbnails from ../shared/data)`); this.skip(); }
  });

  it('five-point: faces aligned once, landmarks cached on disk and reused; unreadable and faceless files skipped and listed', async () => {
    const dir = tmpDir('aligned');
    const root = await flatFolder(dir);
    const o = { root, layout: 'flat' as const, align: 'five-point' as const, alignBox: 0.6, size: 112, minPerIdentity: 1, sampler: { kind: 'uniform' as const } };
    const first = await imageFolder.create(o, testContext(dir, 1));
    const atStart = tf.memory().numTensors;
    const info = await first.init();
    await new Promise((r) => setImmediate(r)); // the landmark net is disposed when its load promise settles
    expect(tf.memory().numTensors, 'landmark search and alignment leave no tensor behind').to.equal(atStart);
    expect(info.images).to.equal(3);
    expect(info.identities).to.equal(undefined);
    expect(info.skipped.map((s) => s.file).sort()).to.deep.equal(['broken.jpg', 'grey.jpg']);
    expect(info.skipped.find((s) => s.file === 'grey.jpg')!.reason).to.match(/^alignment: /);
    const lmFiles = readdirSync(path.join(dir, '.cache', 'landmarks'));
    expect(lmFiles).to.have.length(1);

    // The eyes land on the template: the landmark net run on the aligned output finds them a few px from it (the template's eyes are 35 px apart).
    const b = await first.next(3);
    expect(b.labels, 'flat folders have no labels').to.equal(undefined);
    expect(b.images.shape).to.deep.equal([3, 112, 112, 3]);
    const lm = await FaceLandmarker.load();
    const again = await lm.fivePoints(b.images, [0, 1, 2].map(() => ({ x: 0, y: 0, width: 112, height: 112 })));
    const t = templateFor(112);
    // (measured: 0.5–6.4 px, median ~3; the net, run on a crop tighter than the boxes it was trained on, adds a bias of its own)
    const errs = again.flatMap((p) => [0, 1].map((e) => Math.hypot(p[e]![0] - t[e]![0], p[e]![1] - t[e]![1]))).sort((x, y) => x - y);
    expect(errs[Math.floor(errs.length / 2)], 'median eye error').to.be.below(4);
    expect(errs.at(-1), 'worst eye error').to.be.below(8);
    lm.dispose();

    // A second source over the same folder reads the landmarks back: the same pixels, no landmark search (a search
    // would add rows and rewrite the cache file).
    const lmFile = path.join(dir, '.cache', 'landmarks', lmFiles[0]!);
    const written = statSync(lmFile).mtimeMs;
    const second = await imageFolder.create(o, testContext(dir, 1));
    const tensorsBefore = tf.memory().numTensors;
    await second.init();
    expect(tf.memory().numTensors, 'aligning a folder leaves no tensor behind').to.equal(tensorsBefore);
    const b2 = await second.next(3);
    expect(b2.keys).to.deep.equal(b.keys);
    expect(Array.from(await b2.images.data())).to.deep.equal(Array.from(await b.images.data()));
    tf.dispose([b.images, b2.images]);
    const flat = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) (await second.next(2)).images.dispose();
    expect(tf.memory().numTensors, 'tensor count flat across batches').to.equal(flat);
    expect(readdirSync(path.join(dir, '.cache', 'landmarks'))).to.deep.equal(lmFiles);
    expect(statSync(lmFile).mtimeMs, 'the landmark cache was not rewritten').to.equal(written);

    // An option that moves the landmark search is another cache file, never the old landmarks.
    const third = await imageFolder.create({ ...o, alignBox: 0.7 }, testContext(dir, 1));
    await third.init();
    expect(readdirSync(path.join(dir, '.cache', 'landmarks'))).to.have.length(2);
  });

  it('aligned faces are cached whole: a second source reads them back (same pixels, same skipped files); a changed file or a torn cache gives them afresh', async () => {
    const dir = tmpDir('aligned-cache');
    const root = await flatFolder(dir);
    const o = { root, layout: 'flat' as const, align: 'five-point' as const, alignBox: 0.6, size: 112, minPerIdentity: 1, sampler: { kind: 'uniform' as const } };
    const read = async () => {
      const src = await imageFolder.create(o, testContext(dir, 1));
      const info = await src.init();
      const b = await src.next(3);
      const px = Array.from(await b.images.data());
      b.images.dispose();
      src.dispose();
      return { info, px, keys: b.keys };
    };
    const cacheDir = path.join(dir, '.cache', 'aligned-faces');
    const first = await read();
    const files = readdirSync(cacheDir);
    expect(files).to.have.length(1);
    const lmDir = path.join(dir, '.cache', 'landmarks');
    const lmWritten = statSync(path.join(lmDir, readdirSync(lmDir)[0]!)).mtimeMs;
    const second = await read();
    expect(second.keys).to.deep.equal(first.keys);
    expect(second.px).to.deep.equal(first.px);
    expect(second.info).to.deep.equal(first.info);
    expect(readdirSync(cacheDir)).to.deep.equal(files);

    // A torn file (cut short by a kill while written elsewhere) is not read: the faces come again, equal.
    const f = path.join(cacheDir, files[0]!);
    writeFileSync(f, readFileSync(f).subarray(0, 5000));
    const third = await read();
    expect(third.px).to.deep.equal(first.px);
    expect(statSync(f).size).to.be.above(3 * 112 * 112 * 3);

    // A file replaced in the folder (new mtime) is another key: a second cache file, and the landmark search runs for that image only.
    const later = new Date(Date.now() + 5000);
    utimesSync(path.join(root, FACES[1]!), later, later);
    await read();
    expect(readdirSync(cacheDir)).to.have.length(2);
    expect(statSync(path.join(lmDir, readdirSync(lmDir)[0]!)).mtimeMs, 'the landmark cache gained the changed file').to.be.above(lmWritten);
  });

  it('dlib-chip: 150 px chips; identity folders reached through symbolic links are listed', async () => {
    const dir = tmpDir('chip');
    const real = path.join(dir, 'store', 'Anne');
    mkdirSync(real, { recursive: true });
    for (const f of FACES) copyFileSync(path.join(FFHQ, f), path.join(real, f));
    const root = path.join(dir, 'faces');
    mkdirSync(root);
    symlinkSync(real, path.join(root, 'Anne'));
    expect((await listIdentityFolder(root)).map((e) => e.file)).to.deep.equal(FACES.map((f) => path.join('Anne', f)));
    const src = await imageFolder.create({ root, align: 'dlib-chip', alignBox: 0.6, size: 150, minPerIdentity: 1, sampler: { kind: 'uniform' } }, testContext(dir, 1));
    const info = await src.init();
    expect(info.images).to.equal(3);
    const b = await src.next(2);
    expect(b.images.shape).to.deep.equal([2, 150, 150, 3]);
    expect(Array.from(b.labels!)).to.deep.equal([0, 0]);
    b.images.dispose();
  });

  it('the options refuse an identity sampler on a flat folder, and centreCrop with align, naming the key', () => {
    const issues = (o: object) => {
      const r = imageFolderOptions.safeParse({ root: FFHQ, ...o });
      return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    };
    expect(issues({ layout: 'flat', sampler: { kind: 'pk', identities: 2, perIdentity: 2 } })).to.deep.equal(
      ['sampler: sampler pk draws identities, but layout: flat has no identity labels (use layout: identity-folders)']);
    expect(issues({ align: 'five-point', centreCrop: 50 })).to.deep.equal(['centreCrop: centreCrop and align exclude each other (alignment crops to the face itself)']);
    expect(issues({ layout: 'flat', align: 'five-point' })).to.deep.equal([]);
  });

  it('the landmark cache file is keyed by the preprocessing version: another version never reads it', async () => {
    const dir = tmpDir('lmver');
    const a = new LandmarkCache(dir, { root: '/x' }, 2), b = new LandmarkCache(dir, { root: '/x' }, 3);
    expect(a.file).to.not.equal(b.file);
    a.set('k', Array.from({ length: 68 }, (_, i) => [i, 2 * i] as const));
    await a.save();
    const a2 = new LandmarkCache(dir, { root: '/x' }, 2);
    await a2.load();
    expect(a2.get('k')![67]).to.deep.equal([67, 134]);
    // Even a file at b's name written by version 2 is not read as version 3.
    copyFileSync(a.file!, b.file!);
    await b.load();
    expect(b.get('k')).to.equal(undefined);
  });
});
