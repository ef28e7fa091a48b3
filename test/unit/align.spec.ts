import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { ARCFACE_TEMPLATE, alignFaces, DLIB_CHIP_POINTS, dlibChipPoint, dlibChipTransform, fivePointsFrom68, inverseSimilarity, similarityTransform, templateFor, type Point } from '../../core/images/align.js';

const apply = (m: readonly number[], [x, y]: Point): Point => [m[0]! * x + m[1]! * y + m[2]!, m[3]! * x + m[4]! * y + m[5]!];

describe('5-point similarity alignment (strategy-specs 7.9)', () => {
  it('the template maps to itself with the identity', () => {
    const m = similarityTransform(ARCFACE_TEMPLATE, ARCFACE_TEMPLATE);
    [1, 0, 0, 0, 1, 0].forEach((v, i) => expect(m[i]).to.be.closeTo(v, 1e-9));
  });

  it('hand-worked: src = 2·template + (10, 5) gives a = 0.5, b = 0, t = (−5, −2.5)', () => {
    const src = ARCFACE_TEMPLATE.map(([x, y]) => [2 * x + 10, 2 * y + 5] as Point);
    const m = similarityTransform(src, ARCFACE_TEMPLATE);
    [0.5, 0, -5, 0, 0.5, -2.5].forEach((v, i) => expect(m[i]).to.be.closeTo(v, 1e-9));
  });

  it('a rotation by θ is undone: a = cos θ, b = −sin θ', () => {
    const th = 0.3;
    const src = ARCFACE_TEMPLATE.map(([x, y]) => [Math.cos(th) * x - Math.sin(th) * y, Math.sin(th) * x + Math.cos(th) * y] as Point);
    const m = similarityTransform(src, ARCFACE_TEMPLATE);
    expect(m[0]).to.be.closeTo(Math.cos(th), 1e-9);
    expect(m[3]).to.be.closeTo(-Math.sin(th), 1e-9);
    src.forEach((p, i) => { const q = apply(m, p); expect(q[0]).to.be.closeTo(ARCFACE_TEMPLATE[i]![0], 1e-6); expect(q[1]).to.be.closeTo(ARCFACE_TEMPLATE[i]![1], 1e-6); });
  });

  it('the inverse map sends template points back to the source landmarks', () => {
    const src: Point[] = [[100, 120], [160, 118], [131, 160], [108, 195], [155, 193]];
    const m = similarityTransform(src, ARCFACE_TEMPLATE);
    const inv = inverseSimilarity(m);
    const back = ARCFACE_TEMPLATE.map((q) => apply(inv, q));
    // Least squares: not exact for noisy points, but M(inverse(q)) = q exactly.
    back.forEach((p, i) => { const q = apply(m, p); expect(q[0]).to.be.closeTo(ARCFACE_TEMPLATE[i]![0], 1e-9); expect(q[1]).to.be.closeTo(ARCFACE_TEMPLATE[i]![1], 1e-9); });
  });

  it('other sizes: ×size/112, or ×size/128 with x + 8·size/128; degenerate landmarks are rejected', () => {
    expect(templateFor(224)[0]).to.deep.equal([38.2946 * 2, 51.6963 * 2]);
    expect(templateFor(128)[0]![0]).to.be.closeTo(38.2946 + 8, 1e-12);
    expect(() => similarityTransform([[5, 5], [5, 5], [5, 5], [5, 5], [5, 5]], ARCFACE_TEMPLATE)).to.throw(/degenerate/);
  });

  it('warps: a bright dot at each landmark lands on the template point', () => {
    // A 200×200 black image with 3×3 white squares centred on 5 landmarks of a scaled, shifted face.
    const src = ARCFACE_TEMPLATE.map(([x, y]) => [1.5 * x + 20, 1.5 * y + 12] as Point);
    const buf = new Float32Array(200 * 200 * 3);
    for (const [x, y] of src) for (let dy = -2; dy <= 2; dy++) for (let dx = -2; dx <= 2; dx++) {
      const px = Math.round(x) + dx, py = Math.round(y) + dy;
      for (let c = 0; c < 3; c++) buf[(py * 200 + px) * 3 + c] = 255;
    }
    const img = tf.tensor4d(buf, [1, 200, 200, 3]);
    const out = alignFaces(img, [src], 112);
    expect(out.shape).to.deep.equal([1, 112, 112, 3]);
    const px = out.arraySync()[0]!;
    for (const [x, y] of ARCFACE_TEMPLATE) expect(px[Math.round(y)]![Math.round(x)]![0]).to.be.above(100);
    expect(px[5]![5]![0], 'away from the dots stays black').to.equal(0);
    tf.dispose([img, out]);
  });

  it('68 → 5 points: eye centres, nose tip, mouth corners', () => {
    const p68: Point[] = Array.from({ length: 68 }, (_, i) => [i, 2 * i]);
    expect(fivePointsFrom68(p68)).to.deep.equal([[37.5, 75], [43.5, 87], [30, 60], [48, 96], [54, 108]]);
  });

  it('dlib chip: 33 points (27–54, 60–64); hand-worked corners; the chip → image map sends each chip point onto its landmark', () => {
    expect(DLIB_CHIP_POINTS).to.have.length(33);
    expect(DLIB_CHIP_POINTS.slice(0, 3)).to.deep.equal([27, 28, 29]);
    expect(DLIB_CHIP_POINTS.slice(-6)).to.deep.equal([54, 60, 61, 62, 63, 64]);
    // Landmark 27 (top of the nose bridge) is mean (0.490127, 0.203352): with padding 0.25 at 150 px,
    // x = 150 · (0.25 + 0.490127) / 1.5 = 74.0127, y = 150 · (0.25 + 0.203352) / 1.5 = 45.3352.
    const p27 = dlibChipPoint(27, 150, 0.25);
    expect(p27[0]).to.be.closeTo(74.0127, 1e-9);
    expect(p27[1]).to.be.closeTo(45.3352, 1e-9);
    // Landmarks made by a known similarity of the chip points (scale 1.7, rotation 0.2, shift): the fitted map is it.
    const s = 1.7, th = 0.2, tx = 31, ty = -12;
    const fwd = ([x, y]: Point): Point => [s * (Math.cos(th) * x - Math.sin(th) * y) + tx, s * (Math.sin(th) * x + Math.cos(th) * y) + ty];
    const p68: Point[] = Array.from({ length: 68 }, (_, i) => (i >= 17 ? fwd(dlibChipPoint(i, 150, 0.25)) : [0, 0]));
    const m = dlibChipTransform(p68, 150, 0.25);
    expect(m[0]).to.be.closeTo(s * Math.cos(th), 1e-9);
    expect(m[3]).to.be.closeTo(s * Math.sin(th), 1e-9);
    for (const i of DLIB_CHIP_POINTS) {
      const q = apply(m, dlibChipPoint(i, 150, 0.25));
      expect(q[0]).to.be.closeTo(p68[i]![0], 1e-6);
      expect(q[1]).to.be.closeTo(p68[i]![1], 1e-6);
    }
    expect(m.slice(6)).to.deep.equal([0, 0]);
    expect(() => dlibChipTransform(p68.slice(0, 5), 150, 0.25)).to.throw(/68 landmarks/);
  });
});
