import { writeFileSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { graphModelTeacher } from '../../core/models/graph-model-teacher.js';
import { testContext, tmpDir } from '../helpers/fixtures.js';

/**
 * A tfjs graph model written by hand (TF GraphDef JSON + one weight shard): input 4×4×3 →
 * Reshape [-1, 48] ("flat") → MatMul with W [48, 5] ("emb"). The same maths is then done
 * directly to check the adapter (normalisation, output selection, weight loading).
 */
function writeGraphModel(dir: string, w: Float32Array): string {
  const dim = (...d: number[]) => ({ dim: d.map((size) => ({ size: String(size) })) });
  const node = [
    { name: 'x', op: 'Placeholder', attr: { dtype: { type: 'DT_FLOAT' }, shape: { shape: dim(-1, 4, 4, 3) } } },
    { name: 'shape', op: 'Const', attr: { dtype: { type: 'DT_INT32' }, value: { tensor: { dtype: 'DT_INT32', tensorShape: dim(2) } } } },
    { name: 'W', op: 'Const', attr: { dtype: { type: 'DT_FLOAT' }, value: { tensor: { dtype: 'DT_FLOAT', tensorShape: dim(48, 5) } } } },
    { name: 'flat', op: 'Reshape', input: ['x', 'shape'], attr: { T: { type: 'DT_FLOAT' }, Tshape: { type: 'DT_INT32' } } },
    { name: 'emb', op: 'MatMul', input: ['flat', 'W'], attr: { T: { type: 'DT_FLOAT' }, transpose_a: { b: false }, transpose_b: { b: false } } },
  ];
  const shapeData = new Int32Array([-1, 48]);
  const bin = Buffer.concat([Buffer.from(shapeData.buffer), Buffer.from(w.buffer)]);
  writeFileSync(path.join(dir, 'group1-shard1of1.bin'), bin);
  const json = {
    format: 'graph-model', generatedBy: 'hand', convertedBy: 'facedistill test',
    modelTopology: { node, library: {}, versions: { producer: 1 } },
    weightsManifest: [{ paths: ['group1-shard1of1.bin'], weights: [{ name: 'shape', shape: [2], dtype: 'int32' }, { name: 'W', shape: [48, 5], dtype: 'float32' }] }],
  };
  const file = path.join(dir, 'model.json');
  writeFileSync(file, JSON.stringify(json));
  return file;
}

describe('graph-model teacher', () => {
  const dir = tmpDir('graph');
  const w = Float32Array.from({ length: 48 * 5 }, (_, i) => Math.sin(i) * 0.1);
  const file = writeGraphModel(dir, w);

  it('loads from disk, reads the input size from the signature, and embeds like the hand computation', async () => {
    const t = await graphModelTeacher.create({ path: file, normalise: 'symmetric', colour: 'rgb' }, testContext(dir));
    expect(t.contract.inputSize).to.deep.equal([4, 4]);
    expect(t.embeddingDim).to.equal(5);
    expect(t.paramCount).to.equal(2 + 240);
    expect(t.weightsHash).to.match(/^[0-9a-f]{64}$/);
    const img = tf.tensor4d(Float32Array.from({ length: 2 * 48 }, (_, i) => (i * 37) % 256), [2, 4, 4, 3]);
    const got = await t.embed(img);
    const want = tf.tidy(() => tf.matMul(tf.sub(tf.div(img, 127.5), 1).reshape([2, 48]), tf.tensor2d(w, [48, 5])));
    expect(tf.tidy(() => tf.max(tf.abs(tf.sub(got, want))).dataSync()[0]!)).to.be.below(1e-5);
    tf.dispose([img, got, want]);
    t.dispose();
  });

  it('selects another output node by name', async () => {
    const t = await graphModelTeacher.create({ path: file, output: 'flat', normalise: 'raw255', colour: 'rgb' }, testContext(dir));
    expect(t.embeddingDim).to.equal(48);
    const before = tf.memory().numTensors;
    const img = tf.ones([1, 4, 4, 3]) as tf.Tensor4D;
    const e = await t.embed(img);
    expect(Array.from(e.dataSync()).every((v) => v === 1)).to.equal(true);
    tf.dispose([img, e]);
    expect(tf.memory().numTensors).to.equal(before);
    t.dispose();
  });
});
