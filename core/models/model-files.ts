import { readFile } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { hashFiles } from '../util/hash.js';
import { ensureDir, writeFileAtomic } from '../util/fs.js';

// tfjs models on disk without tfjs-node: file IO handlers over node:fs.

interface ModelJson {
  modelTopology?: object;
  format?: string;
  weightsManifest: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[];
}

/** Reads model.json and its shards; returns artifacts plus the hash of all files. */
export async function readModelArtifacts(modelJson: string): Promise<{ artifacts: tf.io.ModelArtifacts; hash: string; files: string[] }> {
  const json = JSON.parse(await readFile(modelJson, 'utf8')) as ModelJson;
  const dir = path.dirname(modelJson);
  const files = json.weightsManifest.flatMap((g) => g.paths.map((p) => path.join(dir, p)));
  const buffers = await Promise.all(files.map((f) => readFile(f)));
  const weightData = tf.io.concatenateArrayBuffers(buffers.map((b) => b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer));
  const artifacts: tf.io.ModelArtifacts = {
    ...(json.modelTopology ? { modelTopology: json.modelTopology } : {}),
    ...(json.format ? { format: json.format } : {}),
    weightSpecs: json.weightsManifest.flatMap((g) => g.weights),
    weightData,
  };
  return { artifacts, hash: await hashFiles([modelJson, ...files]), files: [modelJson, ...files] };
}

/** Saves a LayersModel as model.json + weights.bin (the tfjs layers format). */
export async function saveLayersModel(model: tf.LayersModel, dir: string): Promise<void> {
  await ensureDir(dir);
  await model.save(tf.io.withSaveHandler(async (a) => {
    const data = a.weightData instanceof ArrayBuffer ? a.weightData : tf.io.concatenateArrayBuffers(a.weightData as ArrayBuffer[]);
    await writeFileAtomic(path.join(dir, 'weights.bin'), new Uint8Array(data));
    const json = {
      modelTopology: a.modelTopology, format: 'layers-model', generatedBy: 'facedistill', convertedBy: null,
      weightsManifest: [{ paths: ['weights.bin'], weights: a.weightSpecs }],
    };
    await writeFileAtomic(path.join(dir, 'model.json'), JSON.stringify(json));
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
  }));
}

export function countParams(vars: readonly { shape: readonly (number | null)[] }[]): number {
  return vars.reduce((n, v) => n + v.shape.reduce<number>((a, b) => a * (b ?? 1), 1), 0);
}
