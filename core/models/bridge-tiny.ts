import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { contribution } from '../di/contribution.js';
import type { PreprocessContract } from '../interfaces/preprocess.js';
import { LayersStudent } from './conv-student.js';
import { SeededLayers, type T } from './seeded-layers.js';

/** BridgeNet-S bottlenecks (strategy-specs §4.3): cin, cout, expansion, stride, repeats. */
export const BRIDGENET_S_BOTTLENECKS: readonly (readonly [number, number, number, number, number])[] = [
  [32, 48, 2, 2, 1],
  [48, 48, 2, 1, 1],
  [48, 64, 2, 2, 1],
  [64, 64, 2, 1, 3],
  [64, 96, 2, 2, 1],
  [96, 96, 2, 1, 1],
];

export const bridgeTinyOptions = z.object({
  inputSize: z.number().int().min(16).max(128).multipleOf(8).default(32).describe('square input size in px (multiple of 8; the GDC kernel is inputSize/8)'),
  embeddingDim: z.number().int().positive().default(128),
});
export type BridgeTinyOptions = z.infer<typeof bridgeTinyOptions>;

/**
 * BridgeNet-S, the low-resolution student of the bridge-distillation design (a project
 * design, MobileFaceNet-style; 211,392 trainable parameters at 32 px, 128-D):
 * conv3×3 (32) → BN → PReLU; dw3×3 → BN → PReLU; bottlenecks 1×1 expand → BN → PReLU →
 * dw3×3 (stride) → BN → PReLU → 1×1 linear project → BN (+ residual at stride 1, equal
 * channels); conv1×1 (256) → BN → PReLU; GDC dw k×k (valid, linear) → BN;
 * Linear(256 → D, no bias) → BatchNorm1d.
 */
export function buildBridgeTiny(o: BridgeTinyOptions, seed: number): tf.LayersModel {
  if (o.inputSize % 8 !== 0) throw new Error(`bridge-tiny: inputSize ${o.inputSize} is not a multiple of 8`);
  const L = new SeededLayers(seed);
  const input = tf.input({ shape: [o.inputSize, o.inputSize, 3] });
  // Scopes name the rows of the spec's parameter table.
  let x = L.scope('stem', () => L.prelu(L.bn(L.conv(input, 32, 3, 1, 'same'))));
  x = L.scope('dw', () => L.prelu(L.bn(L.depthwise(x, 3, 1, 'same'))));
  BRIDGENET_S_BOTTLENECKS.forEach(([cin, cout, e, s, n], row) => L.scope(`bneck${row + 1}`, () => {
    for (let i = 0; i < n; i++) {
      const inC = i === 0 ? cin : cout;
      const stride = i === 0 ? s : 1;
      let y = L.prelu(L.bn(L.conv(x, inC * e, 1, 1, 'same')));
      y = L.prelu(L.bn(L.depthwise(y, 3, stride, 'same')));
      y = L.bn(L.conv(y, cout, 1, 1, 'same')); // linear projection
      x = stride === 1 && inC === cout ? L.add(x, y) : y;
    }
  }));
  x = L.scope('conv', () => L.prelu(L.bn(L.conv(x, 256, 1, 1, 'same'))));
  x = L.scope('gdc', () => L.bn(L.depthwise(x, o.inputSize / 8, 1, 'valid')));
  x = tf.layers.flatten().apply(x) as T;
  const out = L.scope('linear', () => L.bn(L.dense(x, o.embeddingDim, false)));
  return tf.model({ inputs: input, outputs: out, name: 'bridge_tiny' });
}

export const bridgeTiny = contribution({
  slot: 'student',
  kind: 'bridge-tiny',
  summary: 'BridgeNet-S: 211,392-parameter low-resolution student (32 px, 128-D), bridge-distillation design',
  options: bridgeTinyOptions,
  async create(o, ctx) {
    const contract: PreprocessContract = { inputSize: [o.inputSize, o.inputSize], colour: 'rgb', normalise: 'symmetric', crop: 'as the training data' };
    return new LayersStudent('bridge-tiny', buildBridgeTiny(o, ctx.seed), contract);
  },
});
