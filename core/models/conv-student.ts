import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { contribution } from '../di/contribution.js';
import type { PreprocessContract } from '../interfaces/preprocess.js';
import type { Student } from '../interfaces/student.js';
import { Rng } from '../util/rng.js';
import { countParams } from './model-files.js';
import { applyContract } from './preprocess.js';

export class LayersStudent implements Student {
  readonly paramCount: number;
  readonly embeddingDim: number;
  constructor(readonly name: string, readonly model: tf.LayersModel, readonly contract: PreprocessContract) {
    this.paramCount = countParams(model.trainableWeights);
    this.embeddingDim = (model.outputs[0]!.shape as number[]).at(-1)!;
  }

  forward(images: tf.Tensor4D, training: boolean): tf.Tensor2D {
    return tf.tidy(() => this.model.apply(applyContract(images, this.contract), { training }) as tf.Tensor2D);
  }

  dispose(): void { this.model.dispose(); }
}

export const convStudentOptions = z.object({
  inputSize: z.number().int().min(16).max(224).default(64).describe('square input size in px'),
  widths: z.array(z.number().int().positive()).min(1).default([16, 32, 64, 128]).describe('channels per stride-2 stage'),
  embeddingDim: z.number().int().positive().default(128),
});

/**
 * A small MobileNet-style student: a stride-2 conv, then depthwise-separable stride-2 stages,
 * global average pooling and a linear embedding. Small enough to train on a CPU in minutes.
 */
export function buildConvStudent(o: z.infer<typeof convStudentOptions>, seed: number): tf.LayersModel {
  const rng = new Rng(seed);
  const init = () => tf.initializers.heNormal({ seed: rng.seed() });
  const input = tf.input({ shape: [o.inputSize, o.inputSize, 3] });
  let x = tf.layers.conv2d({ filters: o.widths[0]!, kernelSize: 3, strides: 2, padding: 'same', useBias: false, kernelInitializer: init() }).apply(input) as tf.SymbolicTensor;
  x = tf.layers.batchNormalization({ momentum: 0.9 }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.reLU().apply(x) as tf.SymbolicTensor;
  for (const w of o.widths.slice(1)) {
    x = tf.layers.depthwiseConv2d({ kernelSize: 3, strides: 2, padding: 'same', useBias: false, depthwiseInitializer: init() }).apply(x) as tf.SymbolicTensor;
    x = tf.layers.batchNormalization({ momentum: 0.9 }).apply(x) as tf.SymbolicTensor;
    x = tf.layers.reLU().apply(x) as tf.SymbolicTensor;
    x = tf.layers.conv2d({ filters: w, kernelSize: 1, padding: 'same', useBias: false, kernelInitializer: init() }).apply(x) as tf.SymbolicTensor;
    x = tf.layers.batchNormalization({ momentum: 0.9 }).apply(x) as tf.SymbolicTensor;
    x = tf.layers.reLU().apply(x) as tf.SymbolicTensor;
  }
  x = tf.layers.globalAveragePooling2d({}).apply(x) as tf.SymbolicTensor;
  const out = tf.layers.dense({ units: o.embeddingDim, kernelInitializer: tf.initializers.glorotUniform({ seed: rng.seed() }) }).apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out, name: 'conv_student' });
}

export const convStudent = contribution({
  slot: 'student',
  kind: 'conv-student',
  summary: 'small depthwise-separable CNN student (configurable width and input size)',
  options: convStudentOptions,
  async create(o, ctx) {
    const contract: PreprocessContract = { inputSize: [o.inputSize, o.inputSize], colour: 'rgb', normalise: 'symmetric', crop: 'as the training data' };
    return new LayersStudent('conv-student', buildConvStudent(o, ctx.seed), contract);
  },
});
