import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { contribution } from '../di/contribution.js';
import type { PreprocessContract } from '../interfaces/preprocess.js';
import { Rng } from '../util/rng.js';
import { LayersStudent } from './conv-student.js';

type T = tf.SymbolicTensor;

/** MobileFaceNet bottleneck settings (Chen et al. 2018, Table 1): t, c, n, s. */
const BOTTLENECKS: readonly (readonly [number, number, number, number])[] = [
  [2, 64, 5, 2],
  [4, 128, 1, 2],
  [2, 128, 6, 1],
  [4, 128, 1, 2],
  [2, 128, 2, 1],
];

export const mobileFaceNetOptions = z.object({
  inputSize: z.number().int().min(32).max(224).default(112).describe('square input size in px (multiple of 16)'),
  width: z.number().positive().max(4).default(1).describe('channel multiplier'),
  embeddingDim: z.number().int().positive().default(128),
});
export type MobileFaceNetOptions = z.infer<typeof mobileFaceNetOptions>;

/**
 * MobileFaceNet: conv3×3/2 → dw3×3 → 15 inverted-residual bottlenecks (PReLU, BN) →
 * conv1×1 512 → global depthwise conv (GDConv) over the final map → linear conv1×1 → BN.
 * ~1.0M parameters at 112 px, width 1, 128-D.
 */
export function buildMobileFaceNet(o: MobileFaceNetOptions, seed: number): tf.LayersModel {
  if (o.inputSize % 16 !== 0) throw new Error(`mobilefacenet: inputSize ${o.inputSize} is not a multiple of 16`);
  const rng = new Rng(seed);
  const ch = (c: number) => Math.max(8, Math.round((c * o.width) / 8) * 8);
  const bn = (x: T) => tf.layers.batchNormalization({ momentum: 0.9, epsilon: 1e-5 }).apply(x) as T;
  const prelu = (x: T) => tf.layers.prelu({ sharedAxes: [1, 2], alphaInitializer: tf.initializers.constant({ value: 0.25 }) }).apply(x) as T;
  const conv = (x: T, filters: number, k: number, s: number) =>
    tf.layers.conv2d({ filters, kernelSize: k, strides: s, padding: 'same', useBias: false, kernelInitializer: tf.initializers.heNormal({ seed: rng.seed() }) }).apply(x) as T;
  const dw = (x: T, k: number, s: number, padding: 'same' | 'valid' = 'same') =>
    tf.layers.depthwiseConv2d({ kernelSize: k, strides: s, padding, useBias: false, depthwiseInitializer: tf.initializers.heNormal({ seed: rng.seed() }) }).apply(x) as T;

  const input = tf.input({ shape: [o.inputSize, o.inputSize, 3] });
  let x = prelu(bn(conv(input, ch(64), 3, 2)));
  x = prelu(bn(dw(x, 3, 1)));
  let cin = ch(64);
  for (const [t, c, n, s] of BOTTLENECKS) {
    for (let i = 0; i < n; i++) {
      const stride = i === 0 ? s : 1;
      const cout = ch(c);
      let y = prelu(bn(conv(x, cin * t, 1, 1)));
      y = prelu(bn(dw(y, 3, stride)));
      y = bn(conv(y, cout, 1, 1)); // linear bottleneck
      x = stride === 1 && cin === cout ? (tf.layers.add().apply([x, y]) as T) : y;
      cin = cout;
    }
  }
  x = prelu(bn(conv(x, ch(512), 1, 1)));
  const k = o.inputSize / 16;
  x = bn(dw(x, k, 1, 'valid')); // GDConv: one weight per channel and position
  x = bn(conv(x, o.embeddingDim, 1, 1));
  const out = tf.layers.flatten().apply(x) as T;
  return tf.model({ inputs: input, outputs: out, name: 'mobilefacenet' });
}

export const mobileFaceNet = contribution({
  slot: 'student',
  kind: 'mobilefacenet',
  summary: 'MobileFaceNet (Chen et al. 2018): ~1.0M params at 112 px; width and input size configurable',
  options: mobileFaceNetOptions,
  async create(o, ctx) {
    const contract: PreprocessContract = { inputSize: [o.inputSize, o.inputSize], colour: 'rgb', normalise: 'symmetric', crop: 'as the training data' };
    return new LayersStudent('mobilefacenet', buildMobileFaceNet(o, ctx.seed), contract);
  },
});
