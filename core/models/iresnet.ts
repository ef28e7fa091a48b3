import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { contribution } from '../di/contribution.js';
import type { PreprocessContract } from '../interfaces/preprocess.js';
import { LayersStudent } from './conv-student.js';
import { scaledChannels, SeededLayers, type T } from './seeded-layers.js';

/** Blocks per stage (insightface arcface_torch `backbones/iresnet.py`). */
export const IRESNET_LAYERS = {
  18: [2, 2, 2, 2],
  34: [3, 4, 6, 3],
  50: [3, 4, 14, 3],
  100: [3, 13, 30, 3],
} as const satisfies Record<number, readonly [number, number, number, number]>;

export const iresnetOptions = z.object({
  depth: z.union([z.literal(18), z.literal(34), z.literal(50), z.literal(100)]).default(34).describe('18 | 34 | 50 | 100 (MST-KD student: 34)'),
  width: z.number().positive().max(4).default(1).describe('channel multiplier (64-128-256-512 at 1)'),
  inputSize: z.number().int().min(32).max(224).multipleOf(16).default(112).describe('square input size in px (multiple of 16)'),
  embeddingDim: z.number().int().positive().default(512),
  dropout: z.number().min(0).max(1).default(0).describe('dropout before the FC layer (MST-KD iResNet-50 teachers: 0.4)'),
  featureScale: z.enum(['fixed', 'trainable']).default('fixed')
    .describe('final BatchNorm1d γ: fixed at 1 as insightface/MST-KD (requires_grad = False), or trained'),
});
export type IResNetOptions = z.infer<typeof iresnetOptions>;

/**
 * insightface iResNet ("improved" pre-activation-style ResNet for faces):
 * stem conv3×3/1 (64) → BN → PReLU; four stages of IBasicBlocks
 *   BN → conv3×3 → BN → PReLU → conv3×3 (stride) → BN, + shortcut (conv1×1/stride + BN on
 *   the first block of each stage, which halves the map);
 * then BN2d → dropout → flatten → FC(C·k·k → D) → BatchNorm1d, k = inputSize/16.
 *
 * The map is flattened in PyTorch's channel-first order (a permute first), so a ported
 * `fc.weight` needs only a transpose. With featureScale 'fixed' the final BN's γ stays 1
 * and is not trainable, as in the reference (`features.weight.requires_grad = False`).
 */
export function buildIResNet(o: IResNetOptions, seed: number): tf.LayersModel {
  if (o.inputSize % 16 !== 0) throw new Error(`iresnet: inputSize ${o.inputSize} is not a multiple of 16`);
  const L = new SeededLayers(seed);
  const ch = (c: number) => scaledChannels(c, o.width);
  const input = tf.input({ shape: [o.inputSize, o.inputSize, 3] });
  let x = L.scope('stem', () => L.prelu(L.bn(L.conv(input, ch(64), 3))));
  let cin = ch(64);
  IRESNET_LAYERS[o.depth].forEach((blocks, stage) => {
    const planes = ch(64 * 2 ** stage);
    for (let i = 0; i < blocks; i++) {
      x = L.scope(`layer${stage + 1}.${i}`, () => {
        const stride = i === 0 ? 2 : 1;
        let y = L.bn(x);
        y = L.prelu(L.bn(L.conv(y, planes, 3)));
        y = L.bn(L.conv(y, planes, 3, stride));
        const shortcut = stride !== 1 || cin !== planes ? L.bn(L.conv(x, planes, 1, stride)) : x;
        return L.add(y, shortcut);
      });
      cin = planes;
    }
  });
  const out = L.scope('head', () => {
    let h = L.bn(x);
    h = tf.layers.permute({ dims: [3, 1, 2] }).apply(h) as T; // NHWC → NCHW before flatten
    h = tf.layers.flatten().apply(h) as T;
    if (o.dropout > 0) h = tf.layers.dropout({ rate: o.dropout }).apply(h) as T;
    return L.bn(L.dense(h, o.embeddingDim), { frozenScale: o.featureScale === 'fixed' });
  });
  return tf.model({ inputs: input, outputs: out, name: `iresnet${o.depth}` });
}

export const iresnet = contribution({
  slot: 'student',
  kind: 'iresnet',
  summary: 'insightface iResNet-18/34/50/100 (34.1M params at depth 34, 112 px, 512-D); width-scalable',
  options: iresnetOptions,
  async create(o, ctx) {
    const contract: PreprocessContract = { inputSize: [o.inputSize, o.inputSize], colour: 'rgb', normalise: 'symmetric', crop: 'as the training data' };
    return new LayersStudent(`iresnet${o.depth}`, buildIResNet(o, ctx.seed), contract);
  },
});
