import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { contribution } from '../di/contribution.js';
import type { PreprocessContract } from '../interfaces/preprocess.js';
import type { Teacher } from '../interfaces/teacher.js';
import { existingPath } from '../recipe/fields.js';
import { countParams, readModelArtifacts } from './model-files.js';
import { applyContract } from './preprocess.js';
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';

class LayersModelTeacher implements Teacher {
  readonly paramCount: number;
  readonly embeddingDim: number;
  constructor(readonly name: string, private readonly model: tf.LayersModel, readonly contract: PreprocessContract, readonly weightsHash: string) {
    this.paramCount = countParams(model.weights);
    this.embeddingDim = (model.outputs[0]!.shape as number[]).at(-1)!;
  }

  async embed(images: tf.Tensor4D): Promise<tf.Tensor2D> {
    return tf.tidy(() => this.model.predict(applyContract(images, this.contract)) as tf.Tensor2D);
  }

  dispose(): void { this.model.dispose(); }
}

/** Loads a LayersModel from disk as a frozen teacher; contract.json beside it is used when present. */
export async function loadLayersTeacher(file: string, name: string, normalise?: PreprocessContract['normalise']): Promise<Teacher> {
  const { artifacts, hash } = await readModelArtifacts(file);
  const model = await tf.loadLayersModel(tf.io.fromMemory(artifacts));
  const contractFile = path.join(path.dirname(file), 'contract.json');
  const saved = existsSync(contractFile) ? (JSON.parse(await readFile(contractFile, 'utf8')) as PreprocessContract) : undefined;
  const shape = model.inputs[0]!.shape;
  const contract: PreprocessContract = {
    inputSize: saved?.inputSize ?? [shape[1] ?? 112, shape[2] ?? 112],
    colour: saved?.colour ?? 'rgb',
    normalise: normalise ?? saved?.normalise ?? 'symmetric',
    crop: saved?.crop ?? 'as trained',
  };
  return new LayersModelTeacher(name, model, contract, hash);
}

/** Any tfjs LayersModel on disk; an exported student (contract.json beside it) loads as is. */
export const layersModelTeacher = contribution({
  slot: 'teacher',
  kind: 'layers-model',
  summary: 'a tfjs LayersModel on disk (model.json + weights); contract.json beside it is used when present',
  options: z.object({
    path: existingPath('file').describe('model.json of the LayersModel'),
    normalise: z.enum(['raw255', 'unit', 'symmetric']).optional().describe('input normalisation (default: contract.json, else symmetric)'),
  }),
  async create(o, ctx) {
    const file = ctx.resolvePath(o.path);
    return loadLayersTeacher(file, `layers-model:${path.basename(path.dirname(file))}`, o.normalise);
  },
});
