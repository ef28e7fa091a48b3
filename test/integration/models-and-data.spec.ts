import { existsSync, mkdirSync, writeFileSync, copyFileSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { selectBackend } from '../../core/backends/select.js';
import type { BuildContext } from '../../core/di/contribution.js';
import { stackImages } from '../../core/images/stack.js';
import { decodeImage } from '../../core/images/decode.js';
import { faceApiResnet34 } from '../../core/models/face-api-teacher.js';
import { layersModelTeacher } from '../../core/models/layers-model-teacher.js';
import { convStudent } from '../../core/models/conv-student.js';
import { saveLayersModel } from '../../core/models/model-files.js';
import { stderrLogger } from '../../core/util/logger.js';
import { imageFolder } from '../../data-sources/image-folder/image-folder.js';
import { sampleFacePairs, sampleFaces } from '../../data-sources/sample-faces/sample-faces.js';
import { CONTEXT_SCALE, CONTEXT_SIZE, contextTemplate, detectSampleFaces } from '../../data-sources/sample-faces/detect.js';
import { FaceLandmarker } from '../../core/images/landmarks.js';
import { demoPhoto, makeIdentityFolder, testContext, tmpDir } from '../helpers/fixtures.js';

function ctx(dir: string, seed = 0): BuildContext {
  return testContext(dir, seed);
}

function cosine(a: Float32Array | number[], b: Float32Array | number[]): number {
  let d = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) { d += a[i]! * b[i]!; na += a[i]! ** 2; nb += b[i]! ** 2; }
  return d / Math.sqrt(na * nb);
}

describe('models and data sources on real images', function () {
  this.timeout(300_000);
  let prev: string;
  before(async () => { prev = tf.getBackend(); await selectBackend('wasm'); });
  after(async () => { await tf.setBackend(prev); });

  it('face-api-resnet34 loads offline: 128-D, 5,614,592 params, stable weight hash', async () => {
    const dir = tmpDir('teacher');
    const t = await faceApiResnet34.create({}, ctx(dir));
    const t2 = await faceApiResnet34.create({}, ctx(dir));
    expect(t.embeddingDim).to.equal(128);
    expect(t.paramCount).to.equal(5_614_592);
    expect(t.weightsHash).to.match(/^[0-9a-f]{64}$/).and.equal(t2.weightsHash);
    t.dispose(); t2.dispose();
  });

  it('sample-faces finds the faces in the npm demo photos; the teacher tells them apart', async () => {
    const dir = tmpDir('faces');
    const src = await sampleFaces.create({ size: 150, margin: 1.25, scaleJitter: 0.08, shiftJitter: 0.05, brightnessJitter: 0.15, flip: true, minConfidence: 0.5, align: false, viewsPerFace: 2 }, ctx(dir));
    const info = await src.init();
    expect(info.identities, 'face-api SSD finds 22 faces in sample1-6.jpg').to.equal(22);
    expect(info.images).to.equal(44);
    const pairs = await sampleFacePairs.create({ size: 150, margin: 1.25, scaleJitter: 0.08, shiftJitter: 0.05, brightnessJitter: 0.15, flip: true, minConfidence: 0.5, align: false, seed: 1, pairsPerFace: 1 }, ctx(dir));
    const p = await pairs.init();
    expect(p.pairs).to.have.length(44);
    expect(p.pairs.filter((x) => x.same)).to.have.length(22);
    expect(existsSync(path.join(dir, '.cache', 'sample-faces')), 'crops cached on disk').to.equal(true);
    // Teacher: genuine pairs (same face, two augmentations) are closer than impostor pairs.
    const teacher = await faceApiResnet34.create({}, ctx(dir));
    const keys = [...new Set(p.pairs.flatMap((x) => [x.a, x.b]))];
    const imgs = await pairs.load(keys);
    const emb = await teacher.embed(imgs);
    const rows = emb.arraySync() as number[][];
    tf.dispose([imgs, emb]);
    const at = (k: string) => rows[keys.indexOf(k as never)]!;
    const genuine = p.pairs.filter((x) => x.same).map((x) => cosine(at(x.a), at(x.b)));
    const impostor = p.pairs.filter((x) => !x.same).map((x) => cosine(at(x.a), at(x.b)));
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(mean(genuine)).to.be.above(mean(impostor) + 0.02);
    // Rank check (an AUC): most genuine pairs score above most impostor pairs.
    const wins = genuine.reduce((n, g) => n + impostor.filter((i) => g > i).length, 0);
    expect(wins / (genuine.length * impostor.length)).to.be.above(0.85);
    teacher.dispose(); src.dispose(); pairs.dispose();
  });

  it('sample-faces align: re-detected landmarks of the aligned crops sit on the ArcFace template', async () => {
    const dir = tmpDir('faces-aligned');
    const S = CONTEXT_SIZE;
    const lm = await FaceLandmarker.load();
    // Landmarks searched in the central box: where the template (aligned) or the detected box (unaligned) sits.
    const side = S / CONTEXT_SCALE, box = { x: (S - side) / 2, y: (S - side) / 2, width: side, height: side };
    const landmarksOf = async (align: boolean) => {
      const faces = await detectSampleFaces(path.join(dir, '.cache'), 0.5, stderrLogger(true), align);
      expect(faces.count, 'every face face-api SSD finds').to.equal(22);
      const imgs = tf.tensor4d(Float32Array.from(faces.data), [faces.count, S, S, 3]);
      try { return await lm.fivePoints(imgs, Array.from({ length: faces.count }, () => box)); } finally { imgs.dispose(); }
    };
    const [aligned, unaligned] = [await landmarksOf(true), await landmarksOf(false)];
    lm.dispose();
    const target = contextTemplate();
    const median = (xs: number[]) => [...xs].sort((u, v) => u - v)[Math.floor(xs.length / 2)]!;
    // Eyes carry the alignment: their midpoint on the template's, the eye line level, the
    // inter-ocular distance the template's (33.5 px in this 192 px frame).
    type P = readonly (readonly [number, number])[];
    const mid = (p: P) => [(p[0]![0] + p[1]![0]) / 2, (p[0]![1] + p[1]![1]) / 2] as const;
    const midErr = (ps: P[]) => ps.map((p) => Math.hypot(mid(p)[0] - mid(target)[0], mid(p)[1] - mid(target)[1]));
    const tilt = (ps: P[]) => ps.map((p) => Math.abs((Math.atan2(p[1]![1] - p[0]![1], p[1]![0] - p[0]![0]) * 180) / Math.PI));
    const iod = (ps: P[]) => ps.map((p) => Math.hypot(p[1]![0] - p[0]![0], p[1]![1] - p[0]![1]) / Math.hypot(target[1]![0] - target[0]![0], target[1]![1] - target[0]![1]));
    // Measured: aligned medians 1.6 px, 2.3°, ratio 1.04 (the landmark net re-run on another box adds a little noise).
    expect(median(midErr(aligned))).to.be.below(3);
    expect(median(tilt(aligned))).to.be.below(3.5);
    expect(Math.abs(median(iod(aligned)) - 1)).to.be.below(0.08);
    // The same faces unaligned (measured: 7.9 px, 10.6°, worst tilt 43° against 13° aligned): the alignment did the work.
    expect(median(midErr(unaligned))).to.be.above(2 * median(midErr(aligned)));
    expect(median(tilt(unaligned))).to.be.above(2 * median(tilt(aligned)));
  });

  it('image-folder skips a truncated JPEG, a zero-byte file and a text file named .jpg, and reports them', async () => {
    const dir = tmpDir('folder');
    const root = await makeIdentityFolder(path.join(dir, 'faces'), 3, 3, 32);
    mkdirSync(path.join(root, 'Broken'), { recursive: true });
    const good = path.join(root, 'Person_1', 'Person_1_0001.jpg');
    const bytes = (await import('node:fs')).readFileSync(good);
    writeFileSync(path.join(root, 'Broken', 'truncated.jpg'), bytes.subarray(0, Math.floor(bytes.length / 3)));
    writeFileSync(path.join(root, 'Broken', 'empty.jpg'), '');
    writeFileSync(path.join(root, 'Broken', 'notes.jpg'), 'this is not an image\n');
    copyFileSync(good, path.join(root, 'Broken', 'fine.jpg'));
    const src = await imageFolder.create({ root, size: 32, minPerIdentity: 1, sampler: { kind: 'uniform' } }, ctx(dir, 3));
    const info = await src.init();
    expect(info.images).to.equal(10);
    expect(info.skipped.map((s) => s.file).sort()).to.deep.equal(['Broken/empty.jpg', 'Broken/notes.jpg', 'Broken/truncated.jpg']);
    const b = await src.next(6);
    expect(b.images.shape).to.deep.equal([6, 32, 32, 3]);
    expect(b.labels).to.have.length(6);
    b.images.dispose();
  });

  it('image-folder batches are deterministic per seed and resume from state()', async () => {
    const dir = tmpDir('folder2');
    const root = await makeIdentityFolder(path.join(dir, 'faces'), 3, 3, 16);
    const make = async (seed: number) => { const s = await imageFolder.create({ root, size: 16, minPerIdentity: 1, sampler: { kind: 'uniform' } }, ctx(dir, seed)); await s.init(); return s; };
    const a = await make(1), b = await make(1), c = await make(2);
    const keys = async (s: Awaited<ReturnType<typeof make>>) => { const x = await s.next(5); x.images.dispose(); return x.keys; };
    expect(await keys(a)).to.deep.equal(await keys(b));
    const st = JSON.parse(JSON.stringify(a.state()));
    const nextA = await keys(a);
    c.restore(st);
    expect(await keys(c)).to.deep.equal(nextA);
  });

  it('a trained student exports with its contract and loads back as a layers-model teacher with identical outputs', async () => {
    const dir = tmpDir('export');
    const student = await convStudent.create({ inputSize: 32, widths: [8, 16], embeddingDim: 24 }, ctx(dir, 5));
    await saveLayersModel(student.model, path.join(dir, 'student'));
    writeFileSync(path.join(dir, 'student', 'contract.json'), JSON.stringify(student.contract));
    const teacher = await layersModelTeacher.create({ path: path.join(dir, 'student', 'model.json') }, ctx(dir));
    expect(teacher.contract).to.deep.equal(student.contract);
    expect(teacher.embeddingDim).to.equal(24);
    const img = stackImages([await decodeImage(demoPhoto(1), { size: 48 }), await decodeImage(demoPhoto(2), { size: 48 })]);
    const a = student.forward(img, false);
    const b = await teacher.embed(img);
    const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!);
    expect(diff).to.be.below(1e-5);
    tf.dispose([img, a, b]);
    student.dispose(); teacher.dispose();
  });
});
