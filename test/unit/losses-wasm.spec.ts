// Every distillation loss must train on the wasm backend, the default here (backend-notes §1.2): wasm lacks some
// gradient kernels (UnsortedSegmentSum, the gradient of gather), so a loss that works on cpu can still fail there.
// This runs each loss and its student gradient on wasm and compares them with the cpu backend.
import { createRequire } from 'node:module';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { expect } from 'chai';
import { registerWasmGradKernels } from '../../core/backends/wasm-grad-kernels.js';
import { cckdLoss } from '../../strategies/cckd/loss.js';
import { darkRankLoss } from '../../strategies/darkrank/loss.js';
import { EkdAnchors, ekdLoss } from '../../strategies/ekd/loss.js';
import { gkdLoss } from '../../strategies/grouped-kd/loss.js';
import { logitKdLoss } from '../../strategies/logit-kd/loss.js';
import { mstKdLoss } from '../../strategies/mst-kd/loss.js';
import { rkdLoss } from '../../strategies/rkd/loss.js';
import { spLoss } from '../../strategies/sp/loss.js';
import { synthDistillLoss } from '../../strategies/synthdistill/loss.js';
import { grid, relErr, t2 } from '../helpers/loss-inputs.js';

const fs = grid(12, 8, 17), ft = grid(12, 8, 18);
const zs = grid(6, 40, 15, 10), zt = grid(6, 40, 16, 10);
const LABELS = [0, 0, 0, 1, 1, 1, 2, 2, 3, 3, 4, 5];
const GKD_LABELS = Int32Array.from([3, 17, 0, 39, 22, 8]);

type Case = readonly [name: string, student: number[][], loss: (s: tf.Tensor2D) => tf.Scalar];
const CASES: readonly Case[] = [
  ['ekd (firstBatch anchors, top-10)', fs, (s) => ekdLoss(s, t2(ft), LABELS, new EkdAnchors('firstBatch'), { topK: 10 }).loss],
  ['ekd (strictCritical)', fs, (s) => ekdLoss(s, t2(ft), LABELS, new EkdAnchors('firstBatch'), { pairSelection: 'strictCritical' }).loss],
  ['grouped-kd (fixed k = 5, λ = 1)', zs, (s) => gkdLoss(s, t2(zt), GKD_LABELS, { groupSize: 5, lambda: 1 }).kd],
  ['grouped-kd (cumulative)', zs, (s) => gkdLoss(s, t2(zt), GKD_LABELS, { groupMode: 'cumulative', tau: 0.9, step: 3 }).kd],
  ['logit-kd', zs, (s) => logitKdLoss(s, t2(zt))],
  ['rkd', fs, (s) => rkdLoss(s, t2(ft)).loss],
  ['sp', fs, (s) => spLoss(s, t2(ft))],
  ['darkrank', fs, (s) => darkRankLoss(s, t2(ft))],
  ['cckd (P = 3)', fs, (s) => cckdLoss(s, t2(ft), { gamma: 0.4, terms: 3 })],
  ['synthdistill (l2)', fs, (s) => synthDistillLoss(s, t2(ft), 'l2')],
  ['mst-kd', fs, (s) => mstKdLoss(s, t2(ft))],
];

function valueAndGrad(student: number[][], loss: Case[2]): { value: number; grad: Float32Array } {
  return tf.tidy(() => {
    const { value, grad } = tf.valueAndGrad((x: tf.Tensor) => loss(x as tf.Tensor2D))(t2(student));
    return { value: value.dataSync()[0]!, grad: grad.dataSync() as Float32Array };
  });
}

describe('distillation losses on the wasm backend', () => {
  let previous = 'cpu';
  const onCpu = new Map<string, { value: number; grad: Float32Array }>();

  before(async () => {
    previous = tf.getBackend();
    for (const [name, s, loss] of CASES) onCpu.set(name, valueAndGrad(s, loss));
    setWasmPaths(path.dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm/package.json')) + '/dist/');
    registerWasmGradKernels();
    expect(await tf.setBackend('wasm')).to.equal(true);
  });

  after(async () => {
    await tf.setBackend(previous);
  });

  for (const [name, s, loss] of CASES) {
    it(`${name}: value and student gradient match the cpu backend`, () => {
      expect(tf.getBackend()).to.equal('wasm');
      const got = valueAndGrad(s, loss), want = onCpu.get(name)!;
      expect(got.value).to.be.closeTo(want.value, 1e-5 * Math.abs(want.value) + 1e-7);
      expect(Math.max(...want.grad.map(Math.abs))).to.be.greaterThan(0);
      expect(relErr(got.grad, want.grad)).to.be.lessThan(1e-4);
    });
  }
});
