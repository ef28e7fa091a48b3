import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { contribution } from '../di/contribution.js';
import type { PreprocessContract } from '../interfaces/preprocess.js';
import type { Teacher } from '../interfaces/teacher.js';
import { hashFiles } from '../util/hash.js';
import { applyContract } from './preprocess.js';

const require = createRequire(import.meta.url);

/** Folder of the face-api package's bundled weights (offline, from node_modules). */
export function faceApiModelDir(): string {
  return path.join(path.dirname(require.resolve('@vladmandic/face-api/package.json')), 'model');
}

/** face-api's node-wasm build shares our tfjs instance and runs on whichever backend is active. */
export function loadFaceApi(): any {
  return require('@vladmandic/face-api/dist/face-api.node-wasm.js');
}

const CONTRACT: PreprocessContract = {
  inputSize: [150, 150], colour: 'rgb', normalise: 'raw255',
  crop: 'dlib face chip (150 px); the net subtracts its mean itself',
};

/** The 128-D dlib ResNet-34 shipped in @vladmandic/face-api. Its output is not unit norm. */
class FaceApiResnet34 implements Teacher {
  readonly name = 'face-api-resnet34';
  readonly contract = CONTRACT;
  readonly embeddingDim = 128;
  constructor(private readonly net: any, readonly weightsHash: string, readonly paramCount: number) {}

  async embed(images: tf.Tensor4D): Promise<tf.Tensor2D> {
    const parts = tf.tidy(() => tf.unstack(applyContract(images, this.contract)) as tf.Tensor3D[]);
    try {
      const faceapi = loadFaceApi();
      const input = await faceapi.toNetInput(parts);
      return this.net.forwardInput(input) as tf.Tensor2D;
    } finally {
      tf.dispose(parts);
    }
  }

  dispose(): void { this.net.dispose(); }
}

export const faceApiResnet34 = contribution({
  slot: 'teacher',
  kind: 'face-api-resnet34',
  summary: '128-D dlib ResNet-34 from @vladmandic/face-api (weights from node_modules, offline)',
  options: z.object({}),
  async create() {
    const faceapi = loadFaceApi();
    const dir = faceApiModelDir();
    const net = new faceapi.FaceRecognitionNet();
    await net.loadFromDisk(dir);
    const manifestFile = path.join(dir, 'face_recognition_model-weights_manifest.json');
    const manifest = JSON.parse(await readFile(manifestFile, 'utf8')) as { paths: string[]; weights: { shape: number[] }[] }[];
    const params = manifest.flatMap((g) => g.weights).reduce((n, w) => n + w.shape.reduce((a, b) => a * b, 1), 0);
    const hash = await hashFiles([manifestFile, ...manifest.flatMap((g) => g.paths.map((p) => path.join(dir, p)))]);
    return new FaceApiResnet34(net, hash, params);
  },
});
