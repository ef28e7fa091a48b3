import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { buildConvStudent } from '../../core/models/conv-student.js';
import { buildMobileFaceNet } from '../../core/models/mobilefacenet.js';

const count = (ws: readonly tf.LayerVariable[]) => ws.reduce((n, w) => n + (w.shape as number[]).reduce((a, b) => a * b, 1), 0);

describe('student zoo: parameter counts', () => {
  it('conv-student default (64 px, widths 16-32-64-128, 128-D): 29,408 trainable', () => {
    // stem 3·3·3·16 + BN 2·16 = 464; per stage dw 9·cin + BN 2cin + pw cin·w + BN 2w:
    // 16→32: 752, 32→64: 2,528, 64→128: 9,152; dense 128·128 + 128 = 16,512.  Sum 29,408.
    const m = buildConvStudent({ inputSize: 64, widths: [16, 32, 64, 128], embeddingDim: 128 }, 0);
    expect(count(m.trainableWeights)).to.equal(29_408);
    m.dispose();
  });

  it('mobilefacenet at 112 px: 1,022,720 weights, 1,003,136 trainable (the backend-notes benchmark net)', () => {
    const m = buildMobileFaceNet({ inputSize: 112, width: 1, embeddingDim: 128 }, 0);
    expect(count(m.weights)).to.equal(1_022_720);
    expect(count(m.trainableWeights)).to.equal(1_003_136);
    expect(m.layers).to.have.length(147);
    expect(m.outputs[0]!.shape).to.deep.equal([null, 128]);
    m.dispose();
  });

  it('mobilefacenet at 32 px differs only in the GDConv kernel: 999,680 weights', () => {
    // GDConv is 512·k² weights with k = inputSize/16: (49 − 4)·512 = 23,040 fewer than at 112.
    const m = buildMobileFaceNet({ inputSize: 32, width: 1, embeddingDim: 128 }, 0);
    expect(count(m.weights)).to.equal(1_022_720 - 45 * 512);
    m.dispose();
  });

  it('the same seed builds the same weights; another seed does not', () => {
    const a = buildConvStudent({ inputSize: 32, widths: [8, 16], embeddingDim: 8 }, 3);
    const b = buildConvStudent({ inputSize: 32, widths: [8, 16], embeddingDim: 8 }, 3);
    const c = buildConvStudent({ inputSize: 32, widths: [8, 16], embeddingDim: 8 }, 4);
    const w = (m: tf.LayersModel) => Array.from(m.getWeights()[0]!.dataSync());
    expect(w(a)).to.deep.equal(w(b));
    expect(w(a)).to.not.deep.equal(w(c));
    [a, b, c].forEach((m) => m.dispose());
  });
});
