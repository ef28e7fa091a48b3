import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { contribution } from '../di/contribution.js';
import type { PreprocessContract } from '../interfaces/preprocess.js';
import { LayersStudent } from './conv-student.js';
import { SeededLayers, type T } from './seeded-layers.js';

// TinyFaR (SynthDistill's `LightNetwork`): timm `tinynet_a/b/c` without its classifier,
// then Linear(1280 → D). Facts from timm `models/efficientnet.py` (`_gen_tinynet`),
// `models/_efficientnet_builder.py` (`round_channels`, `_scale_stage_depth`, SE ratio
// divided by the expansion ratio), `models/_efficientnet_blocks.py` (SqueezeExcite,
// DepthwiseSeparableConv, InvertedResidual) and `layers/helpers.py` (`make_divisible`).

/** EfficientNet-B0 stages: block type, repeats, kernel, stride, expansion, out channels; SE 0.25 everywhere. */
const B0_STAGES: readonly (readonly ['ds' | 'ir', number, number, number, number, number])[] = [
  ['ds', 1, 3, 1, 1, 16], ['ir', 2, 3, 2, 6, 24], ['ir', 2, 5, 2, 6, 40], ['ir', 3, 3, 2, 6, 80],
  ['ir', 3, 5, 1, 6, 112], ['ir', 4, 5, 2, 6, 192], ['ir', 1, 3, 1, 6, 320],
];
const SE_RATIO = 0.25;
const STEM = 32; // fix_stem: not width-scaled
const HEAD_FEATURES = 1280;

/** timm `tinynet_a/b/c`: (width, depth) multipliers. Their native resolutions (192/188/184) are not used: SynthDistill runs at 112. */
export const TINYNET_MULTIPLIERS = { a: [1.0, 1.2], b: [0.75, 1.1], c: [0.54, 0.85] } as const;

/** timm `make_divisible`: nearest multiple of `divisor` (half up), never below it, never more than 10% under v. */
export function makeDivisible(v: number, divisor = 8): number {
  let n = Math.max(divisor, Math.floor(Math.floor(v + divisor / 2) / divisor) * divisor);
  if (n < 0.9 * v) n += divisor;
  return n;
}

/** Python 3 `round`: halves go to the even neighbour (timm rounds depth with it). */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

export interface MbBlock { readonly stage: number; readonly index: number; readonly type: 'ds' | 'ir'; readonly cin: number; readonly cout: number; readonly k: number; readonly stride: number; readonly mid: number; readonly se: number }

/** The block list timm builds for a width/depth multiplier (depth_trunc 'round'). */
export function tinynetBlocks(width: number, depth: number): MbBlock[] {
  const blocks: MbBlock[] = [];
  let cin = STEM;
  B0_STAGES.forEach(([type, repeats, k, s, e, c], stage) => {
    const cout = makeDivisible(c * width);
    const n = Math.max(1, roundHalfEven(repeats * depth));
    for (let i = 0; i < n; i++) {
      const mid = type === 'ds' ? cin : makeDivisible(cin * e);
      // SE width from the block input: rd_ratio = 0.25 / exp_ratio applied to mid channels.
      const se = roundHalfEven(mid * (SE_RATIO / e));
      blocks.push({ stage, index: i, type, cin, cout, k, stride: i === 0 ? s : 1, mid, se });
      cin = cout;
    }
  });
  return blocks;
}

export const tinyfarOptions = z.object({
  size: z.enum(['a', 'b', 'c']).default('a').describe('TinyFaR-A/B/C = timm tinynet_a/b/c'),
  inputSize: z.number().int().min(32).max(256).default(112).describe('square input size in px'),
  embeddingDim: z.number().int().positive().default(512),
  init: z.enum(['scratch'], { error: 'only "scratch": ImageNet-pretrained TinyNet weights are not available offline' }).default('scratch')
    .describe('weight initialisation; SynthDistill starts from ImageNet weights, which this build cannot fetch'),
});
export type TinyFarOptions = z.infer<typeof tinyfarOptions>;

/**
 * Stem conv3×3/2 (32) → BN → SiLU; MBConv blocks
 *   ds: dw k×k → BN → SiLU → SE → pw 1×1 → BN (+ skip when stride 1 and cin = cout);
 *   ir: pw 1×1 expand → BN → SiLU → dw k×k → BN → SiLU → SE → pw 1×1 → BN (+ skip);
 *   SE: global mean → 1×1 (bias) → SiLU → 1×1 (bias) → sigmoid gate;
 * then conv1×1 (1280) → BN → SiLU → global average pool → Linear(1280 → D), raw output.
 * Convolutions pad as PyTorch does (k//2 on every side).
 */
export function buildTinyFar(o: TinyFarOptions, seed: number): tf.LayersModel {
  const [width, depth] = TINYNET_MULTIPLIERS[o.size];
  const L = new SeededLayers(seed);
  const input = tf.input({ shape: [o.inputSize, o.inputSize, 3] });
  let x = L.scope('stem', () => L.swish(L.bn(L.conv(input, STEM, 3, 2))));
  for (const b of tinynetBlocks(width, depth)) {
    x = L.scope(`blocks.${b.stage}.${b.index}`, () => {
      let y = b.type === 'ir' ? L.swish(L.bn(L.conv(x, b.mid, 1))) : x;
      y = L.swish(L.bn(L.depthwise(y, b.k, b.stride)));
      y = squeezeExcite(L, y, b.mid, b.se);
      y = L.bn(L.conv(y, b.cout, 1));
      return b.stride === 1 && b.cin === b.cout ? L.add(x, y) : y;
    });
  }
  x = L.scope('head', () => L.swish(L.bn(L.conv(x, Math.max(HEAD_FEATURES, makeDivisible(HEAD_FEATURES * width)), 1))));
  x = tf.layers.globalAveragePooling2d({}).apply(x) as T;
  const out = L.scope('embedding', () => L.dense(x, o.embeddingDim));
  return tf.model({ inputs: input, outputs: out, name: `tinyfar_${o.size}` });
}

function squeezeExcite(L: SeededLayers, x: T, channels: number, reduced: number): T {
  let g = tf.layers.globalAveragePooling2d({}).apply(x) as T;
  g = L.dense(g, reduced, true, 'swish'); // = conv_reduce 1×1 on the pooled map
  g = L.dense(g, channels, true, 'sigmoid'); // = conv_expand 1×1, then the gate
  g = tf.layers.reshape({ targetShape: [1, 1, channels] }).apply(g) as T;
  return tf.layers.multiply().apply([x, g]) as T;
}

export const tinyFar = contribution({
  slot: 'student',
  kind: 'tinyfar',
  summary: 'TinyFaR-A/B/C (SynthDistill): timm TinyNet backbone + Linear(1280→512); 5.56M / 3.11M / 1.83M params; scratch init only',
  options: tinyfarOptions,
  async create(o, ctx) {
    const contract: PreprocessContract = { inputSize: [o.inputSize, o.inputSize], colour: 'rgb', normalise: 'symmetric', crop: 'as the training data' };
    return new LayersStudent(`tinyfar-${o.size}`, buildTinyFar(o, ctx.seed), contract);
  },
});
