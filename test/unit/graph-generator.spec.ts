import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { disposeBatch } from '../../core/interfaces/data-source.js';
import { Rng } from '../../core/util/rng.js';
import { graphGenerator, graphGeneratorOptions, type GraphGeneratorSource } from '../../data-sources/latent-generator/graph-generator.js';
import { synthdistillCropBox } from '../../data-sources/latent-generator/synthdistill-crop.js';
import { testContext, tmpDir } from '../helpers/fixtures.js';

const dim = (...d: number[]) => ({ dim: d.map((size) => ({ size: String(size) })) });
const placeholder = (name: string, ...shape: number[]) => ({ name, op: 'Placeholder', attr: { dtype: { type: 'DT_FLOAT' }, shape: { shape: dim(...shape) } } });
const constant = (name: string, dtype: 'DT_FLOAT' | 'DT_INT32', ...shape: number[]) => ({ name, op: 'Const', attr: { dtype: { type: dtype }, value: { tensor: { dtype, tensorShape: dim(...shape) } } } });
const reshape = (name: string, x: string, shape: string) => ({ name, op: 'Reshape', input: [x, shape], attr: { T: { type: 'DT_FLOAT' }, Tshape: { type: 'DT_INT32' } } });
const matmul = (name: string, a: string, b: string) => ({ name, op: 'MatMul', input: [a, b], attr: { T: { type: 'DT_FLOAT' }, transpose_a: { b: false }, transpose_b: { b: false } } });

/** A graph model JSON + one shard, written by hand (as test/unit/graph-model.spec.ts does). */
function writeGraph(dir: string, node: object[], weights: { name: string; shape: number[]; data: Float32Array | Int32Array }[]): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'shard.bin'), Buffer.concat(weights.map((w) => Buffer.from(w.data.buffer))));
  const manifest = weights.map((w) => ({ name: w.name, shape: w.shape, dtype: w.data instanceof Int32Array ? 'int32' : 'float32' }));
  writeFileSync(path.join(dir, 'model.json'), JSON.stringify({ format: 'graph-model', generatedBy: 'hand', convertedBy: 'facedistill test', modelTopology: { node, library: {}, versions: { producer: 1 } }, weightsManifest: [{ paths: ['shard.bin'], weights: manifest }] }));
  return path.join(dir, 'model.json');
}

// mapping: z [N, 4] → w = z·Wm [N, 4]. synthesis: w+ [N, 2, 4] → flat [N, 8] → ·Ws [8, 768] →
// reshape [N, 3, 16, 16] (NCHW, roughly in [−1.5, 1.5] so the clamp to [−1, 1] bites).
const S = 16, Z = 4, NUM_WS = 2;
const WM = Float32Array.from({ length: Z * Z }, (_, i) => Math.cos(0.7 * i) * 0.6);
const WS = Float32Array.from({ length: NUM_WS * Z * 3 * S * S }, (_, i) => Math.sin(0.37 * i + 0.1) * 0.45);

function writeModels(dir: string) {
  const mapping = writeGraph(path.join(dir, 'mapping'), [placeholder('z', -1, Z), constant('Wm', 'DT_FLOAT', Z, Z), matmul('w', 'z', 'Wm')], [{ name: 'Wm', shape: [Z, Z], data: WM }]);
  const synthesis = writeGraph(path.join(dir, 'synthesis'), [
    placeholder('ws', -1, NUM_WS, Z), constant('flat_shape', 'DT_INT32', 2), constant('img_shape', 'DT_INT32', 4), constant('Ws', 'DT_FLOAT', NUM_WS * Z, 3 * S * S),
    reshape('flat', 'ws', 'flat_shape'), matmul('lin', 'flat', 'Ws'), reshape('img', 'lin', 'img_shape'),
  ], [{ name: 'flat_shape', shape: [2], data: Int32Array.from([-1, NUM_WS * Z]) }, { name: 'img_shape', shape: [4], data: Int32Array.from([-1, 3, S, S]) }, { name: 'Ws', shape: [NUM_WS * Z, 3 * S * S], data: WS }]);
  return { mapping, synthesis };
}

/** The generator maths in plain JS: NCHW image of w (broadcast to 2 layers), clamped, mapped to 0..255, as HWC. */
function imageOf(w: readonly number[]): number[] {
  const flat = [...w, ...w];
  const out = new Array<number>(S * S * 3);
  for (let c = 0; c < 3; c++) for (let y = 0; y < S; y++) for (let x = 0; x < S; x++) {
    const col = (c * S + y) * S + x;
    let v = 0;
    for (let k = 0; k < flat.length; k++) v += flat[k]! * WS[k * 3 * S * S + col]!;
    out[(y * S + x) * 3 + c] = ((Math.min(1, Math.max(-1, v)) + 1) / 2) * 255;
  }
  return out;
}

/** TF's half-pixel bilinear resize of an HWC crop (rows r0.., cols c0.., side n) to m×m, written out. */
function cropResize(img: number[], side: number, r0: number, c0: number, n: number, m: number): number[] {
  const out: number[] = [];
  const at = (y: number, x: number, c: number) => img[((r0 + y) * side + (c0 + x)) * 3 + c]!;
  for (let i = 0; i < m; i++) for (let j = 0; j < m; j++) for (let c = 0; c < 3; c++) {
    const fy = (i + 0.5) * (n / m) - 0.5, fx = (j + 0.5) * (n / m) - 0.5;
    const y0 = Math.max(Math.floor(fy), 0), y1 = Math.min(Math.ceil(fy), n - 1), ly = fy - Math.floor(fy);
    const x0 = Math.max(Math.floor(fx), 0), x1 = Math.min(Math.ceil(fx), n - 1), lx = fx - Math.floor(fx);
    const top = at(y0, x0, c) + (at(y0, x1, c) - at(y0, x0, c)) * lx;
    const bot = at(y1, x0, c) + (at(y1, x1, c) - at(y1, x0, c)) * lx;
    out.push(top + (bot - top) * ly);
  }
  return out;
}

describe('graph-generator latent generator', () => {
  const dir = tmpDir('graph-gen');
  const { mapping, synthesis } = writeModels(dir);
  const make = async (o: Record<string, unknown>, seed = 0) => {
    const s = (await graphGenerator.create(graphGeneratorOptions.parse(o), testContext(dir, seed))) as GraphGeneratorSource;
    return { s, info: await s.init() };
  };

  it('SynthDistill crop P: the spec\'s integers at 256 px, the same formula at 16 and 1024', () => {
    expect(synthdistillCropBox(256)).to.deep.equal({ begin: [21, 22], size: [213, 213] });
    // By the formula (scaled eyes, α, ⌊top-left⌋, ⌊top-left + 112/α⌋): 16 → 1.368, 1.387, 13.310; 1024 → 87.551, 88.747, 851.827.
    expect(synthdistillCropBox(16)).to.deep.equal({ begin: [1, 1], size: [13, 13] });
    expect(synthdistillCropBox(1024)).to.deep.equal({ begin: [87, 88], size: [852, 852] });
  });

  it('mapping + synthesis: w broadcast to numWs, clamp, 0..255, NCHW → NHWC, crop P, resize; latents in w', async () => {
    const { s, info } = await make({ mapping, synthesis, cropSize: 8 }, 4);
    expect(s.latentDim).to.equal(4);
    expect(info.name).to.contain('w-space latents of 4, 8×8 images');
    const rng = Rng.fromState((s.state() as { rng: [number, number, number, number] }).rng);
    const b = await s.next(2);
    expect(b.images.shape).to.deep.equal([2, 8, 8, 3]);
    const z = [0, 1].map(() => Array.from({ length: Z }, () => rng.normal()));
    const w = z.map((zi) => Array.from({ length: Z }, (_, j) => zi.reduce((acc, v, k) => acc + v * WM[k * Z + j]!, 0)));
    const lat = b.latents.arraySync();
    w.forEach((row, i) => row.forEach((v, j) => expect(lat[i]![j]).to.be.closeTo(v, 1e-5)));
    const got = b.images.arraySync();
    w.forEach((row, i) => {
      const want = cropResize(imageOf(row), S, 1, 1, 13, 8);
      expect(got[i]!.flat(2).every((v, k) => Math.abs(v - want[k]!) < 1e-3)).to.equal(true);
    });
    const all = got.flat(3);
    expect(Math.min(...all)).to.equal(0); // the clamp at −1 shows
    disposeBatch(b);
    s.dispose();
  });

  it('feedback resamples in w: w′ = w + std·ε, rendered by synthesis alone', async () => {
    const { s } = await make({ mapping, synthesis, crop: 'none' }, 1);
    const a = await s.next(3);
    const w = a.latents.arraySync();
    const rng = Rng.fromState((s.state() as { rng: [number, number, number, number] }).rng);
    s.feedback(a.keys, Float32Array.from([0, 1, 0.25]));
    const b = await s.next(3);
    const w2 = w.map((row, i) => row.map((v) => v + [0, 1, 0.25][i]! * rng.normal()));
    const got = b.latents.arraySync();
    w2.forEach((row, i) => row.forEach((v, j) => expect(got[i]![j]).to.be.closeTo(v, 1e-5)));
    const img = b.images.arraySync();
    w2.forEach((row, i) => expect(img[i]!.flat(2).every((v, k) => Math.abs(v - imageOf(row)[k]!) < 1e-3)).to.equal(true));
    [a, b].forEach(disposeBatch);
    s.dispose();
  });

  it('resampleSpace z: latents are z, rendered through mapping + synthesis', async () => {
    const { s } = await make({ mapping, synthesis, crop: 'none', resampleSpace: 'z' }, 2);
    const b = await s.next(1);
    const z = b.latents.arraySync()[0]!;
    const w = Array.from({ length: Z }, (_, j) => z.reduce((acc, v, k) => acc + v * WM[k * Z + j]!, 0));
    expect(b.images.arraySync()[0]!.flat(2).every((v, k) => Math.abs(v - imageOf(w)[k]!) < 1e-3)).to.equal(true);
    disposeBatch(b);
    s.dispose();
  });

  it('one model z → image (NHWC output, range [0, 1]); w space refused; bad combinations named', async () => {
    const nhwc = writeGraph(path.join(dir, 'single'), [
      placeholder('z', -1, 3), constant('shape', 'DT_INT32', 4), constant('W', 'DT_FLOAT', 3, 12), matmul('lin', 'z', 'W'), reshape('img', 'lin', 'shape'),
    ], [{ name: 'shape', shape: [4], data: Int32Array.from([-1, 2, 2, 3]) }, { name: 'W', shape: [3, 12], data: Float32Array.from({ length: 36 }, (_, i) => (i % 5) / 10) }]);
    const { s } = await make({ model: nhwc, crop: 'none', outputRange: [0, 1] });
    expect(s.latentDim).to.equal(3);
    const x = s.render(tf.tensor2d([[1, 0, 0]]));
    // z = e₀ picks W's first row: (i mod 5)/10 for i = 0..11, clamped to [0, 1], ×255.
    expect(Array.from(x.dataSync())).to.deep.equal(Array.from({ length: 12 }, (_, i) => Math.fround(((i % 5) / 10) * 255)));
    x.dispose();
    s.dispose();
    await make({ model: nhwc, resampleSpace: 'w' }).then(() => expect.fail('should throw'), (e: Error) => expect(e.message).to.contain('resampleSpace w needs mapping + synthesis'));
    await make({ mapping }).then(() => expect.fail('should throw'), (e: Error) => expect(e.message).to.contain('both mapping (z → w) and synthesis'));
    await make({ model: nhwc, mapping, synthesis }).then(() => expect.fail('should throw'), (e: Error) => expect(e.message).to.contain('not both'));
  });

  it('tensor count stays flat across next → feedback → next; dispose frees the models', async () => {
    const before0 = tf.memory().numTensors;
    const { s } = await make({ mapping, synthesis, cropSize: 8 });
    const step = async () => {
      const a = await s.next(2);
      s.feedback(a.keys, Float32Array.from([0.5, 0.5]));
      disposeBatch(a);
      disposeBatch(await s.next(2));
    };
    await step();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 4; i++) await step();
    expect(tf.memory().numTensors).to.equal(before);
    s.dispose();
    expect(tf.memory().numTensors).to.equal(before0);
  });
});
