import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { PREPROCESSING_VERSION } from '../../core/cache/preprocessing-version.js';
import { TeacherCache, teacherCacheKey } from '../../core/engine/teacher-cache.js';
import { sampleKey, type Batch } from '../../core/interfaces/data-source.js';
import type { Teacher } from '../../core/interfaces/teacher.js';
import { pcaFitHash } from '../../data-sources/latent-generator/pca-face.js';
import { tmpDir } from '../helpers/fixtures.js';

function countingTeacher(scale = 1): Teacher & { embedded: number } {
  const t = {
    name: 'mean', embeddingDim: 3, paramCount: 0, weightsHash: 'w', embedded: 0,
    contract: { inputSize: [2, 2], colour: 'rgb', normalise: 'raw255', crop: 'none' },
    async embed(x: tf.Tensor4D) { t.embedded += x.shape[0]; return tf.tidy(() => tf.mul(tf.mean(x, [1, 2]), scale) as tf.Tensor2D); },
    dispose() {},
  };
  return t as unknown as Teacher & { embedded: number };
}

function batch(values: number[]): Batch {
  const images = tf.tidy(() => tf.mul(tf.ones([values.length, 2, 2, 3]), tf.tensor4d(values.flatMap((v) => [v, 2 * v, 3 * v]), [values.length, 1, 1, 3])) as tf.Tensor4D);
  return { images, keys: values.map((v) => sampleKey(`k${v}`)), cacheable: true };
}

async function embedAll(cache: TeacherCache, values: number[]): Promise<number[][]> {
  const b = batch(values);
  const e = await cache.embed(b);
  const out = e.arraySync() as number[][];
  tf.dispose([b.images, e]);
  return out;
}

describe('cache: keys carry the preprocessing version', () => {
  it('teacher embeddings: the key and file change with the version (and with the data list hash)', () => {
    const t = countingTeacher();
    const k = teacherCacheKey(t, 'list-a');
    expect(teacherCacheKey(t, 'list-a', PREPROCESSING_VERSION), 'the default is PREPROCESSING_VERSION').to.equal(k);
    expect(teacherCacheKey(t, 'list-a', PREPROCESSING_VERSION + 1)).to.not.equal(k);
    expect(teacherCacheKey(t, 'list-b')).to.not.equal(k);
    const dir = tmpDir('cache-keys');
    const now = new TeacherCache(t, dir, 'list-a');
    const next = new TeacherCache(t, dir, 'list-a', PREPROCESSING_VERSION + 1);
    expect(now.file).to.equal(path.join(dir, 'teacher-embeddings', `${k}.bin`));
    expect(next.file).to.not.equal(now.file);
  });

  it('teacher embeddings saved under one version are never loaded under another', async () => {
    const dir = tmpDir('cache-keys');
    // Version 1: the (buggy) preparation gave other embeddings; they are saved.
    const old = new TeacherCache(countingTeacher(10), dir, 'list', 1);
    const stale = await embedAll(old, [1, 2]);
    await old.save();
    expect(existsSync(old.file!)).to.equal(true);
    expect(await new TeacherCache(countingTeacher(10), dir, 'list', 1).load(), 'same version reloads').to.equal(2);
    // Version 2 looks for another file: nothing to load, the teacher embeds afresh.
    const t2 = countingTeacher();
    const cur = new TeacherCache(t2, dir, 'list', 2);
    expect(await cur.load()).to.equal(0);
    const fresh = await embedAll(cur, [1, 2]);
    expect(t2.embedded).to.equal(2);
    expect(fresh).to.not.deep.equal(stale);
    expect(fresh).to.deep.equal([[1, 2, 3], [2, 4, 6]]);
    // A version-1 file put under the version-2 name (copied by hand) is refused by its header.
    mkdirSync(path.dirname(cur.file!), { recursive: true });
    copyFileSync(old.file!, cur.file!);
    expect(await new TeacherCache(countingTeacher(), dir, 'list', 2).load()).to.equal(0);
    // What version 2 saves, version 2 reloads.
    await cur.save();
    const again = new TeacherCache(countingTeacher(), dir, 'list', 2);
    expect(await again.load()).to.equal(2);
    expect(await embedAll(again, [1, 2])).to.deep.equal(fresh);
  });

  it('pca-face fits: the fit hash (file name and reuse check) changes with the version', () => {
    const o = { fitOn: { kind: 'sample-faces' }, size: 32, components: 4 } as unknown as Parameters<typeof pcaFitHash>[0];
    const h = pcaFitHash(o, 'list', 100, null);
    expect(pcaFitHash(o, 'list', 100, null, PREPROCESSING_VERSION)).to.equal(h);
    expect(pcaFitHash(o, 'list', 100, null, PREPROCESSING_VERSION + 1)).to.not.equal(h);
    expect(pcaFitHash(o, 'other-list', 100, null)).to.not.equal(h);
  });
});
