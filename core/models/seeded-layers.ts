import * as tf from '@tensorflow/tfjs';
import { Rng } from '../util/rng.js';

export type T = tf.SymbolicTensor;

/**
 * Layer shorthands for the student zoo: every kernel initialiser draws its seed from one
 * RNG, so the same seed builds the same weights. BN uses PyTorch's eps (1e-5) and the
 * project's momentum 0.9 (PyTorch momentum 0.1). Convolutions have no bias.
 */
export class SeededLayers {
  private readonly rng: Rng;
  private scopeName: string | undefined;
  private readonly counts = new Map<string, number>();
  constructor(seed: number) { this.rng = new Rng(seed); }

  /**
   * Names the layers `fn` creates `<scope>.<op><n>` (e.g. `layer1.0.conv2`), so weights can
   * be grouped per block (parameter tables, ported checkpoints).
   */
  scope<R>(name: string, fn: () => R): R {
    const prev = this.scopeName;
    this.scopeName = name;
    try { return fn(); } finally { this.scopeName = prev; }
  }

  private named(op: string): { name?: string } {
    if (this.scopeName === undefined) return {};
    const key = `${this.scopeName}.${op}`;
    const n = (this.counts.get(key) ?? 0) + 1;
    this.counts.set(key, n);
    return { name: `${key}${n}` };
  }

  private he() { return tf.initializers.heNormal({ seed: this.rng.seed() }); }

  /**
   * k×k convolution. `torch` padding pads (k−1)/2 on every side, as PyTorch's
   * `padding=k//2` does; TF's `same` pads stride-2 convs on even inputs only bottom/right,
   * which would shift every feature map by half a pixel against ported PyTorch weights.
   */
  conv(x: T, filters: number, k: number, stride = 1, padding: 'torch' | 'same' | 'valid' = 'torch'): T {
    const [inp, pad] = this.pad(x, k, stride, padding);
    return tf.layers.conv2d({ ...this.named('conv'), filters, kernelSize: k, strides: stride, padding: pad, useBias: false, kernelInitializer: this.he() }).apply(inp) as T;
  }

  depthwise(x: T, k: number, stride = 1, padding: 'torch' | 'same' | 'valid' = 'torch'): T {
    const [inp, pad] = this.pad(x, k, stride, padding);
    return tf.layers.depthwiseConv2d({ ...this.named('dw'), kernelSize: k, strides: stride, padding: pad, useBias: false, depthwiseInitializer: this.he() }).apply(inp) as T;
  }

  /**
   * BatchNorm. `frozenScale` keeps γ at its initial 1 and out of the trainable weights (as
   * PyTorch's `weight.requires_grad = False`); tfjs's own `scale: false` cannot train.
   */
  bn(x: T, opts: { frozenScale?: boolean } = {}): T {
    const layer = tf.layers.batchNormalization({ ...this.named('bn'), momentum: 0.9, epsilon: 1e-5 });
    const y = layer.apply(x) as T;
    if (opts.frozenScale) layer.weights.find((w) => w.originalName.endsWith('/gamma'))!.trainable = false;
    return y;
  }

  /** Per-channel PReLU (PyTorch `nn.PReLU(C)`, slopes start at 0.25). */
  prelu(x: T): T {
    const shape = x.shape;
    const sharedAxes = shape.length === 4 ? [1, 2] : undefined;
    return tf.layers.prelu({ ...this.named('prelu'), ...(sharedAxes ? { sharedAxes } : {}), alphaInitializer: tf.initializers.constant({ value: 0.25 }) }).apply(x) as T;
  }

  /** SiLU / Swish: x·σ(x). */
  swish(x: T): T { return tf.layers.activation({ ...this.named('act'), activation: 'swish' }).apply(x) as T; }

  dense(x: T, units: number, useBias = true, activation?: 'swish' | 'sigmoid'): T {
    return tf.layers.dense({ ...this.named('fc'), units, useBias, ...(activation ? { activation } : {}), kernelInitializer: tf.initializers.glorotUniform({ seed: this.rng.seed() }) }).apply(x) as T;
  }

  add(a: T, b: T): T { return tf.layers.add(this.named('add')).apply([a, b]) as T; }

  private pad(x: T, k: number, stride: number, padding: 'torch' | 'same' | 'valid'): [T, 'same' | 'valid'] {
    if (padding !== 'torch') return [x, padding];
    if (k === 1) return [x, 'valid'];
    if (stride === 1) return [x, 'same']; // symmetric for odd k at stride 1
    return [tf.layers.zeroPadding2d({ ...this.named('pad'), padding: (k - 1) / 2 }).apply(x) as T, 'valid'];
  }
}

/** Channel count scaled by a width multiplier, kept a multiple of 8 (at least 8). */
export function scaledChannels(c: number, width: number): number {
  return width === 1 ? c : Math.max(8, Math.round((c * width) / 8) * 8);
}
