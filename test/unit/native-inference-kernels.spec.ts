/**
 * cpu-native's inference kernels (fused convolutions with bias and activation in the epilogue, general broadcasting
 * of the binary ops, more unary ops, BatchMatMul, pooling, Concat / Pack) against the pure-JS cpu reference, and the
 * counters that say which path ran: every case here must have run natively (a kernel that silently declines fails).
 * Plus the fallback report (one line per kernel and reason), the load-time conv + bias + activation fusion of graph
 * models, and the SE-MobileFaceNet teacher end to end (skipped when ../shared/models is absent).
 */
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import sharp from 'sharp';
import * as tf from '@tensorflow/tfjs';
import { NATIVE_BACKEND, nativeFallbackWarnings, nativeKernelStats, resetNativeKernelStats } from '../../core/backends/native/backend.js';
import { fuseConvBiasActivation } from '../../core/models/graph-fusion.js';
import { broadcastDims } from '../../core/backends/native/kernels.js';
import { readModelArtifacts } from '../../core/models/model-files.js';
import { compareWithCpu, ex, relErr, withGrads } from '../helpers/native-compare.js';
import { useNativeBackend } from '../helpers/native.js';
import { seeded } from '../helpers/seeded.js';

type Pad = 'same' | 'valid' | number | tf.backend_util.ExplicitPadding;
type Shape4 = [number, number, number, number];
type Act = 'linear' | 'relu' | 'relu6' | 'prelu' | 'leakyrelu' | 'elu' | 'sigmoid';

const size = (s: readonly number[]) => s.reduce((p, q) => p * q, 1);

const compare = compareWithCpu;

const ACTS: readonly Act[] = ['linear', 'relu', 'relu6', 'prelu', 'leakyrelu', 'elu', 'sigmoid'];

describe('cpu-native inference kernels (vs the pure-JS cpu reference, native path asserted)', function () {
  this.timeout(600_000);
  useNativeBackend();

  // --- FusedConv2D ----------------------------------------------------------------------------------------------
  interface ConvCase { readonly k: number; readonly s: number; readonly pad: Pad; readonly x: Shape4; readonly co: number; readonly why: string }
  const CONV: readonly ConvCase[] = [
    { k: 1, s: 1, pad: 'same', x: [2, 7, 6, 19], co: 37, why: 'pointwise, ragged tiles' },
    { k: 1, s: 1, pad: 'valid', x: [4, 16, 16, 64], co: 48, why: 'pointwise, rows split over threads' },
    { k: 1, s: 1, pad: 'valid', x: [2, 1, 1, 2048], co: 160, why: 'pointwise, depth split (partial sums)' },
    { k: 3, s: 2, pad: 'same', x: [2, 16, 16, 3], co: 16, why: 'im2col, a stem' },
    { k: 3, s: 1, pad: ex(1, 2, 2, 0), x: [2, 8, 7, 5], co: 17, why: 'im2col, explicit padding' },
    { k: 5, s: 2, pad: 'valid', x: [1, 11, 10, 6], co: 33, why: 'im2col, valid' },
  ];
  for (const c of CONV) {
    it(`FusedConv2D ${c.k}x${c.k} s${c.s} pad=${JSON.stringify(c.pad)} x=${c.x} co=${c.co} (${c.why}): bias × every activation`, async () => {
      const w: Shape4 = [c.k, c.k, c.x[3], c.co];
      for (const activation of ACTS) {
        for (const withBias of [true, false]) {
          // PReLU weights as graph models give them ([1,1,co]) and as one shared scalar.
          for (const alphaShape of activation === 'prelu' ? [[1, 1, c.co], [1]] : [[1]]) {
            await compare(`fused conv ${activation} bias=${withBias} alpha=${alphaShape}`, [c.x, w, [c.co], alphaShape],
              (x, f, b, a) => tf.fused.conv2d({
                x: x as tf.Tensor4D, filter: f as tf.Tensor4D, strides: c.s, pad: c.pad, bias: withBias ? b : undefined, activation,
                preluActivationWeights: activation === 'prelu' ? a : undefined, leakyreluAlpha: 0.13,
              }), [tf.FusedConv2D], 1e-5);
          }
        }
      }
    });
  }

  it('FusedConv2D with a bias, in training: forward (bias in the epilogue) and every gradient', async () => {
    await compare('fused conv + bias, grads', [[2, 9, 9, 8], [3, 3, 8, 12], [12]], withGrads((x, f, b) =>
      tf.fused.conv2d({ x: x as tf.Tensor4D, filter: f as tf.Tensor4D, strides: 1, pad: 'same', bias: b })), [tf.FusedConv2D]);
  });

  it('FusedConv2D with a bias that is not per channel (a full [h, w, co] map) and full-size PReLU weights', async () => {
    await compare('fused conv, spatial bias/alpha', [[2, 6, 5, 4], [1, 1, 4, 8], [6, 5, 8], [6, 5, 8]], (x, f, b, a) =>
      tf.fused.conv2d({ x: x as tf.Tensor4D, filter: f as tf.Tensor4D, strides: 1, pad: 'same', bias: b, activation: 'prelu', preluActivationWeights: a }),
    [tf.FusedConv2D]);
  });

  // --- FusedDepthwiseConv2D -------------------------------------------------------------------------------------
  interface DwCase { readonly k: number; readonly s: number; readonly pad: Pad; readonly x: Shape4; readonly why: string }
  const DW: readonly DwCase[] = [
    { k: 3, s: 1, pad: 'same', x: [2, 9, 11, 32], why: '3x3 register-blocked, interior groups of 4 and borders' },
    { k: 3, s: 2, pad: 'same', x: [2, 12, 13, 48], why: '3x3 stride 2 groups' },
    { k: 3, s: 1, pad: 'valid', x: [1, 6, 9, 16], why: '3x3 no padding' },
    { k: 3, s: 2, pad: ex(0, 1, 0, 1), x: [2, 8, 8, 16], why: '3x3 stride 2, TF-style asymmetric same padding' },
    { k: 3, s: 1, pad: 1, x: [3, 2, 3, 32], why: 'image smaller than the filter' },
    { k: 3, s: 1, pad: 'same', x: [2, 7, 7, 20], why: 'channels not a multiple of the vector: generic path' },
    { k: 7, s: 1, pad: 'valid', x: [4, 7, 7, 40], why: 'GDConv, one output pixel' },
    { k: 5, s: 2, pad: 'same', x: [1, 9, 9, 8], why: '5x5 generic' },
  ];
  for (const c of DW) {
    it(`FusedDepthwiseConv2D ${c.k}x${c.k} s${c.s} pad=${JSON.stringify(c.pad)} x=${c.x} (${c.why}): bias × every activation`, async () => {
      const C = c.x[3];
      for (const activation of ACTS) {
        for (const withBias of [true, false]) {
          for (const alphaShape of activation === 'prelu' ? [[1, 1, C], [C], [1]] : [[1]]) {
            await compare(`fused dw ${activation} bias=${withBias} alpha=${alphaShape}`, [c.x, [c.k, c.k, C, 1], [C], alphaShape],
              (x, f, b, a) => tf.fused.depthwiseConv2d({
                x: x as tf.Tensor4D, filter: f as tf.Tensor4D, strides: c.s, pad: c.pad as 'same', bias: withBias ? b : undefined, activation,
                preluActivationWeights: activation === 'prelu' ? a : undefined, leakyreluAlpha: 0.07,
              }), [tf.FusedDepthwiseConv2D]);
          }
        }
      }
    });
  }

  it('FusedDepthwiseConv2D with per-pixel PReLU weights ([oh, ow, C]): the row epilogue', async () => {
    await compare('fused dw, spatial alpha', [[2, 8, 8, 16], [3, 3, 16, 1], [16], [8, 8, 16]], (x, f, b, a) =>
      tf.fused.depthwiseConv2d({ x: x as tf.Tensor4D, filter: f as tf.Tensor4D, strides: 1, pad: 'same', bias: b, activation: 'prelu', preluActivationWeights: a }),
    [tf.FusedDepthwiseConv2D]);
  });

  // --- binary ops with general broadcasting ---------------------------------------------------------------------
  it('keeps the broadcast geometry it hands to the addon: axes merged, size-1 axes dropped', () => {
    // [N,H,W,C] ⊙ [N,1,1,C] → [N, H·W, C], b's strides [C, 0, 1]
    expect([...broadcastDims([2, 3, 4, 5], [2, 1, 1, 5], [2, 3, 4, 5])!]).to.deep.equal([3, 2, 12, 5, 60, 5, 1, 5, 0, 1]);
    // outer product [4,1] ⊙ [1,3]
    expect([...broadcastDims([4, 1], [1, 3], [4, 3])!]).to.deep.equal([2, 4, 3, 1, 0, 0, 1]);
    // scalar ⊙ scalar
    expect([...broadcastDims([], [1], [1])!]).to.deep.equal([1, 1, 0, 0]);
  });

  const BINARY: readonly [string, string, (a: tf.Tensor, b: tf.Tensor) => tf.Tensor, boolean][] = [
    ['add', tf.Add, tf.add, true], ['sub', tf.Sub, tf.sub, true], ['mul', tf.Multiply, tf.mul, true],
    ['div', tf.RealDiv, (a, b) => tf.div(a, tf.add(tf.abs(b), 0.5)), true],
    ['squaredDifference', tf.SquaredDifference, tf.squaredDifference, false], ['maximum', tf.Maximum, tf.maximum, false], ['minimum', tf.Minimum, tf.minimum, false],
  ];
  const PAIRS: readonly [number[], number[]][] = [
    [[2, 5, 6, 16], [2, 1, 1, 16]],     // the SE block: [N,H,W,C] ⊙ [N,1,1,C]
    [[2, 1, 1, 16], [2, 5, 6, 16]],     // the same, operands swapped
    [[2, 1, 1, 16], [1, 1, 1, 16]],     // [N,1,1,C] ⊙ [1,1,1,C]
    [[3, 1, 5], [1, 4, 1]],             // both broadcast
    [[4, 1], [1, 3]],                   // outer product
    [[2, 3, 4, 5], [3, 1, 1]],          // middle axis
    [[2, 3, 4, 5], [2, 3, 4, 1]],       // last axis broadcast
    [[8, 28, 28, 64], [8, 1, 1, 64]],   // large: threaded rows
  ];
  for (const [name, kernelName, op, grads] of BINARY) {
    it(`${name} with general broadcasting (SE-block shapes, both sides, outer products)${grads ? ', with gradients' : ''}`, async () => {
      for (const [a, b] of PAIRS) await compare(`${name} ${a} ⊙ ${b}`, [a, b], grads ? withGrads(op) : op, [kernelName]);
    });
  }

  // --- unary ------------------------------------------------------------------------------------------------------
  it('sigmoid, relu6, elu, leakyRelu, abs, exp (NaN kept where the reference keeps it)', async () => {
    const cases: [string, (x: tf.Tensor) => tf.Tensor][] = [
      [tf.Sigmoid, (x) => tf.sigmoid(tf.mul(x, 8))], [tf.Relu6, (x) => tf.relu6(tf.mul(x, 9))], [tf.Elu, (x) => tf.elu(tf.mul(x, 3))],
      [tf.LeakyRelu, (x) => tf.leakyRelu(x, 0.17)], [tf.Abs, tf.abs], [tf.Exp, (x) => tf.exp(tf.mul(x, 4))],
    ];
    for (const [kernelName, f] of cases) {
      await compare(kernelName, [[300, 257]], (x) => f(tf.where(tf.greater(x, 0.98), tf.fill(x.shape, NaN), x)), [kernelName]);
      await compare(`${kernelName} small`, [[3, 5]], f, [kernelName]);
    }
  });

  // --- BatchMatMul ----------------------------------------------------------------------------------------------
  it('BatchMatMul: 2-D, batched, broadcast batch, transposes, rank 4, with gradients', async () => {
    const cases: [number[], number[], boolean, boolean][] = [
      [[3, 5, 7], [3, 7, 4], false, false], [[3, 7, 5], [3, 7, 4], true, false], [[3, 5, 7], [3, 4, 7], false, true],
      [[3, 7, 5], [3, 4, 7], true, true], [[1, 5, 7], [3, 7, 4], false, false], [[3, 5, 7], [7, 4], false, false],
      [[64, 300], [300, 96], false, false], [[2, 3, 5, 7], [2, 3, 7, 4], false, false], [[40, 2, 3], [40, 3, 2], false, false],
    ];
    for (const [a, b, ta, tb] of cases) {
      // tfjs's own BatchMatMul gradient does not reduce a broadcast batch (it throws on cpu too): forward only there.
      const broadcast = a.length !== b.length || a[0] !== b[0];
      const f = (x: tf.Tensor, y: tf.Tensor) => tf.matMul(x, y, ta, tb);
      await compare(`matMul ${a} ${b} ${ta} ${tb}`, [a, b], broadcast ? f : withGrads(f), [tf.BatchMatMul]);
    }
  });

  // --- pooling ----------------------------------------------------------------------------------------------------
  it('MaxPool and AvgPool: windows, strides, same/valid/explicit padding, channels off the vector width', async () => {
    const cases: [Shape4, [number, number], number, 'same' | 'valid' | number][] = [
      [[2, 9, 9, 32], [3, 3], 2, 'same'], [[2, 8, 8, 20], [2, 2], 2, 'valid'], [[3, 7, 7, 40], [7, 7], 1, 'valid'],
      [[1, 10, 7, 16], [3, 2], 1, 'same'], [[2, 6, 6, 5], [3, 3], 1, 1],
    ];
    for (const [x, f, s, pad] of cases) {
      const p = pad as 'same' | 'valid' | number;
      await compare(`maxPool ${x} ${f} s${s} ${JSON.stringify(pad)}`, [x], (t) => tf.maxPool(t as tf.Tensor4D, f, s, p), [tf.MaxPool]);
      await compare(`avgPool ${x} ${f} s${s} ${JSON.stringify(pad)}`, [x], (t) => tf.avgPool(t as tf.Tensor4D, f, s, p), [tf.AvgPool]);
    }
  });

  // --- Concat / Pack ----------------------------------------------------------------------------------------------
  it('concat along every axis and stack (Pack) along a new axis', async () => {
    for (const axis of [0, 1, 2, 3, -1]) {
      const shape = (d: number): number[] => { const s = [2, 3, 4, 5]; s[(axis + 4) % 4] = d; return s; };
      await compare(`concat axis ${axis}`, [shape(1), shape(3), shape(2)], (a, b, c) => tf.concat([a, b, c], axis), [tf.Concat]);
    }
    await compare('concat of channels', [[4, 16, 16, 1], [4, 16, 16, 1], [4, 16, 16, 1]], (a, b, c) => tf.concat([a, b, c], 3), [tf.Concat]);
    for (const axis of [0, 1, 3, -1]) {
      await compare(`stack axis ${axis}`, [[4, 5, 3], [4, 5, 3], [4, 5, 3]], (a, b, c) => tf.stack([a, b, c], axis), [tf.Pack]);
    }
  });

  it('gather along each axis (repeated and reordered indices) and flipLeftRight, exactly as the reference', async () => {
    for (const axis of [0, 1, 3]) {
      await compare(`gather axis ${axis}`, [[5, 4, 3, 6]], (x) => tf.gather(x, tf.tensor1d([2, 0, 2, 1], 'int32'), axis), [tf.GatherV2], 1e-9);
    }
    await compare('gather with 2-D indices', [[6, 7]], (x) => tf.gather(x, tf.tensor2d([[5, 0], [3, 3]], [2, 2], 'int32')), [tf.GatherV2], 1e-9);
    await compare('flipLeftRight', [[3, 5, 7, 3]], (x) => tf.image.flipLeftRight(x as tf.Tensor4D), [tf.FlipLeftRight], 1e-9);
    // An index out of range declines to the reference, which names it.
    expect(await tf.setBackend(NATIVE_BACKEND)).to.equal(true);
    expect(() => tf.tidy(() => tf.gather(tf.zeros([3, 2]), tf.tensor1d([3], 'int32')).dataSync())).to.throw(/3/);
  });

  // --- fallback reporting -----------------------------------------------------------------------------------------
  it('a case a native kernel declines runs the reference, is counted, and is reported once per (kernel, reason)', async () => {
    await tf.setBackend(NATIVE_BACKEND);
    resetNativeKernelStats();
    const before = nativeFallbackWarnings().length;
    for (let i = 0; i < 2; i++) {
      tf.tidy(() => tf.fused.conv2d({ x: tf.ones([1, 80, 80, 2]) as tf.Tensor4D, filter: tf.ones([3, 3, 2, 3]) as tf.Tensor4D, strides: 1, pad: 'same', dilations: 2, bias: tf.ones([3]) }).dataSync());
    }
    const s = nativeKernelStats();
    expect(s.fallback.get(tf.FusedConv2D)).to.equal(2);
    expect(s.native.get(tf.FusedConv2D) ?? 0).to.equal(0);
    expect(s.reasons.get(`${tf.FusedConv2D}: with dilation 2x2`)).to.equal(2);
    const line = "cpu-native: FusedConv2D with dilation 2x2 runs on tfjs's pure-JS kernel (slow)";
    const lines = nativeFallbackWarnings();
    expect(lines.filter((l) => l === line), lines.join('\n')).to.have.length(1);
    expect(lines.length - before).to.be.at.most(1);
    // A small declined case (int32 index arithmetic and the like) is counted, not reported.
    resetNativeKernelStats();
    tf.tidy(() => tf.add(tf.tensor1d([1, 2, 3], 'int32'), tf.tensor1d([4, 5, 6], 'int32')).dataSync());
    expect(nativeKernelStats().reasons.get(`${tf.Add}: with int32 operands`)).to.equal(1);
    expect(nativeFallbackWarnings().some((l) => l.includes('Add with int32'))).to.equal(false);
  });

  // --- graph models ---------------------------------------------------------------------------------------------
  /** A tiny graph model (tfjs converter format): conv → BiasAdd → Prelu, depthwise → BiasAdd → Relu6, conv → BiasAdd. */
  function tinyGraph(): tf.io.ModelArtifacts {
    const s = (v: string) => ({ s: Buffer.from(v).toString('base64') });
    const ints = (...v: number[]) => ({ list: { i: v.map(String) } });
    const f32 = { type: 'DT_FLOAT' };
    const weights: [string, number[]][] = [['w1', [3, 3, 3, 8]], ['b1', [8]], ['a1', [8]], ['w2', [3, 3, 8, 1]], ['b2', [8]], ['w3', [1, 1, 8, 4]], ['b3', [4]]];
    const node = [
      { name: 'x', op: 'Placeholder', attr: { dtype: f32, shape: { shape: { dim: [{ size: '-1' }, { size: '10' }, { size: '10' }, { size: '3' }] } } } },
      ...weights.map(([name, shape]) => ({ name, op: 'Const', attr: { dtype: f32, value: { tensor: { dtype: 'DT_FLOAT', tensorShape: { dim: shape.map((d) => ({ size: String(d) })) } } } } })),
      { name: 'c1', op: 'Conv2D', input: ['x', 'w1'], attr: { T: f32, strides: ints(1, 2, 2, 1), padding: s('SAME'), data_format: s('NHWC'), dilations: ints(1, 1, 1, 1) } },
      { name: 'c1/bias', op: 'BiasAdd', input: ['c1', 'b1'], attr: { T: f32, data_format: s('NHWC') } },
      { name: 'c1/act', op: 'Prelu', input: ['c1/bias', 'a1'], attr: { T: f32 } },
      { name: 'd2', op: 'DepthwiseConv2dNative', input: ['c1/act', 'w2'], attr: { T: f32, strides: ints(1, 1, 1, 1), padding: s('SAME'), data_format: s('NHWC'), dilations: ints(1, 1, 1, 1) } },
      { name: 'd2/bias', op: 'BiasAdd', input: ['d2', 'b2'], attr: { T: f32 } },
      { name: 'd2/act', op: 'Relu6', input: ['d2/bias'], attr: { T: f32 } },
      { name: 'c3', op: 'Conv2D', input: ['d2/act', 'w3'], attr: { T: f32, strides: ints(1, 1, 1, 1), padding: s('VALID'), data_format: s('NHWC'), dilations: ints(1, 1, 1, 1) } },
      { name: 'c3/bias', op: 'BiasAdd', input: ['c3', 'b3'], attr: { T: f32 } },
      { name: 'out', op: 'Identity', input: ['c3/bias'], attr: { T: f32 } },
    ];
    const data = weights.map(([, shape], i) => seeded(size(shape), 40 + i));
    const all = new Float32Array(data.reduce((n, d) => n + d.length, 0));
    data.reduce((at, d) => { all.set(d, at); return at + d.length; }, 0);
    return {
      modelTopology: { node, versions: { producer: 1 } }, format: 'graph-model',
      weightSpecs: weights.map(([name, shape]) => ({ name, shape, dtype: 'float32' as const })), weightData: all.buffer,
    };
  }

  it('graph fusion: conv/depthwise → BiasAdd → activation chains become one fused node, outputs unchanged, run natively', async () => {
    const art = tinyGraph();
    const { artifacts, fused } = fuseConvBiasActivation(art);
    expect(fused).to.deep.equal({ '_FusedConv2D+BiasAdd+Prelu': 1, 'FusedDepthwiseConv2dNative+BiasAdd+Relu6': 1, '_FusedConv2D+BiasAdd': 1 });
    const ops = (artifacts.modelTopology as { node: { op: string }[] }).node.map((n) => n.op);
    expect(ops.filter((o) => o === 'BiasAdd' || o === 'Prelu' || o === 'Relu6' || o === 'Conv2D')).to.deep.equal([]);
    const run = async (backend: string, a: tf.io.ModelArtifacts) => {
      await tf.setBackend(backend);
      const m = await tf.loadGraphModel(tf.io.fromMemory(a));
      const x = tf.tensor(seeded(2 * 10 * 10 * 3, 3), [2, 10, 10, 3]);
      const y = m.execute(x) as tf.Tensor;
      const v = Float32Array.from(y.dataSync());
      tf.dispose([x, y]);
      m.dispose();
      return v;
    };
    const want = await run('cpu', art);
    expect(relErr(await run('cpu', artifacts), want)).to.equal(0); // the same arithmetic, op for op
    resetNativeKernelStats();
    expect(relErr(await run(NATIVE_BACKEND, artifacts), want)).to.be.below(1e-5);
    const s = nativeKernelStats();
    expect(s.native.get(tf.FusedConv2D)).to.equal(2);
    expect(s.native.get(tf.FusedDepthwiseConv2D)).to.equal(1);
    expect(s.fallback.size, [...s.fallback.keys()].join(', ')).to.be.at.most(2); // Identity / Reshape-like bookkeeping only
    for (const k of s.fallback.keys()) expect(['Identity', 'Reshape', 'Cast']).to.include(k);
  });

  it('graph fusion leaves alone what the fused ops cannot take: depthwise + LeakyRelu, rank-4 PReLU weights, named outputs', () => {
    const art = tinyGraph();
    const topo = art.modelTopology as { node: { name: string; op: string; input?: string[]; attr?: Record<string, unknown> }[] };
    const edit = (f: (n: (typeof topo.node)[number]) => void) => {
      const copy = { ...art, modelTopology: { ...topo, node: topo.node.map((n) => ({ ...n })) } };
      (copy.modelTopology as typeof topo).node.forEach(f);
      return copy;
    };
    // Depthwise → BiasAdd → LeakyRelu: converter's fused depthwise node has no alpha attribute: stop at the BiasAdd.
    const leaky = edit((n) => { if (n.name === 'd2/act') { n.op = 'LeakyRelu'; n.attr = { T: { type: 'DT_FLOAT' }, alpha: { f: 0.1 } }; } });
    expect(fuseConvBiasActivation(leaky).fused['FusedDepthwiseConv2dNative+BiasAdd']).to.equal(1);
    // PReLU weights [1, 1, 1, 8] (rank 4): tf.fused.conv2d refuses them, so the Prelu stays a node of its own.
    const rank4 = { ...art, weightSpecs: art.weightSpecs!.map((w) => (w.name === 'a1' ? { ...w, shape: [1, 1, 1, 8] } : w)) };
    const r4 = fuseConvBiasActivation(rank4);
    expect(r4.fused['_FusedConv2D+BiasAdd']).to.equal(2);
    expect((r4.artifacts.modelTopology as typeof topo).node.map((n) => n.op)).to.include('Prelu');
    // A node the caller reads by name (the teacher's `output:`) survives: here the pre-activation BiasAdd.
    const kept = fuseConvBiasActivation(art, ['c1/bias:0']);
    expect((kept.artifacts.modelTopology as typeof topo).node.map((n) => n.name)).to.include('c1/bias');
    expect(kept.fused['_FusedConv2D+BiasAdd+Prelu']).to.equal(undefined);
  });

  // --- the SE-MobileFaceNet teacher -------------------------------------------------------------------------------
  const SE_MODEL = path.resolve('../shared/models/arcface-semobilefacenet/model.json');
  const FACES = path.resolve('../shared/data/utkface-112/images');

  /** 3 inputs, (x - 127.5) / 128: 112 px face crops from ../shared/data/utkface-112 where present, else smooth patterns. */
  async function faceBatch(): Promise<tf.Tensor4D> {
    const n = 3, px = 112 * 112 * 3, data = new Float32Array(n * px);
    const files = existsSync(FACES) ? readdirSync(FACES).filter((f) => f.endsWith('.jpg')).sort().slice(0, n) : [];
    for (let i = 0; i < n; i++) {
      if (files[i]) {
        const raw = await sharp(path.join(FACES, files[i]!)).resize(112, 112, { fit: 'fill' }).removeAlpha().raw().toBuffer();
        for (let j = 0; j < px; j++) data[i * px + j] = (raw[j]! - 127.5) / 128;
      } else {
        for (let j = 0; j < px; j++) data[i * px + j] = Math.sin(j * 0.001 + i) * 0.8;
      }
    }
    return tf.tensor4d(data, [n, 112, 112, 3]);
  }

  it('the SE-MobileFaceNet teacher: cpu-native matches cpu within 1e-3 on 3 faces, every compute kernel native, fused-at-load too', async function () {
    if (!existsSync(SE_MODEL)) {
      console.log(`      (skipped: ${SE_MODEL} is absent: the shared models are not on this machine)`);
      this.skip();
    }
    const { artifacts } = await readModelArtifacts(SE_MODEL);
    const embed = async (backend: string, fuse: boolean) => {
      await tf.setBackend(backend);
      const m = await tf.loadGraphModel(tf.io.fromMemory(fuse ? fuseConvBiasActivation(artifacts).artifacts : artifacts));
      const x = await faceBatch();
      const y = m.execute(x) as tf.Tensor;
      expect(y.shape).to.deep.equal([3, 256]);
      const v = Float32Array.from(y.dataSync());
      tf.dispose([x, y]);
      m.dispose();
      return v;
    };
    const want = await embed('cpu', false);
    resetNativeKernelStats();
    const got = await embed(NATIVE_BACKEND, false);
    const s = nativeKernelStats();
    expect(relErr(got, want), 'cpu-native vs cpu').to.be.below(1e-3);
    for (const k of [tf.Conv2D, tf.FusedDepthwiseConv2D, tf.Multiply, tf.Add, tf.Prelu, tf.Sigmoid, tf.Mean, tf.DepthwiseConv2dNative]) {
      expect(s.native.get(k) ?? 0, `${k} native`).to.be.above(0);
      expect(s.fallback.get(k) ?? 0, `${k} fell back`).to.equal(0);
    }
    expect(s.reasons.size, [...s.reasons.keys()].join('; ')).to.equal(0);
    const fallbackMs = [...s.fallbackMs.values()].reduce((a, b) => a + b, 0);
    expect(fallbackMs, `pure-JS time: ${[...s.fallbackMs].map(([k, v]) => `${k} ${v.toFixed(1)} ms`).join(', ')}`).to.be.below(50);
    resetNativeKernelStats();
    const fused = await embed(NATIVE_BACKEND, true);
    expect(relErr(fused, want), 'fused at load, cpu-native vs cpu').to.be.below(1e-3);
    expect(nativeKernelStats().native.get(tf.FusedConv2D) ?? 0).to.be.above(60);
  });
});
