// The realigned teacher: five-point (ArcFace) crops re-framed to dlib's face chip for a teacher
// trained on chips, checked against chips aligned directly from the same landmarks.
import { existsSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { similarityTransform, templateFor, type Point } from '../../core/images/align.js';
import { dlibChipFivePoints, fivePointToChipTransform, realignedTeacher } from '../../core/models/realigned-teacher.js';
import type { Teacher } from '../../core/interfaces/teacher.js';
import { lfwPairs } from '../../data-sources/lfw-pairs/lfw-pairs.js';
import { testContext, tmpDir } from '../helpers/fixtures.js';

const LFW = path.resolve('../shared/data/lfw-deepfunneled');

describe('realigned teacher (five-point crop → dlib chip)', function () {
  this.timeout(300_000);

  it('the fixed map sends the chip\'s five points onto the ArcFace template within 2.5 px (measured ≤ 2.2, the mouth corners), eyes level, nose between them', () => {
    const chip = dlibChipFivePoints(150, 0.25), t = templateFor(112);
    const m = fivePointToChipTransform(112, 150, 0.25);
    const apply = (p: Point): Point => [m[0]! * p[0] + m[1]! * p[1] + m[2]!, m[3]! * p[0] + m[4]! * p[1] + m[5]!];
    // A similarity fitted to 5 points leaves residuals; the two templates agree to about a pixel.
    chip.forEach((p, i) => { const q = apply(p); expect(Math.hypot(q[0] - t[i]![0], q[1] - t[i]![1]), `point ${i}`).to.be.below(2.5); });
    // dlib's mean face is symmetric about x = 0.490127: the eyes are level and the nose midway between them.
    expect(chip[0]![1]).to.be.closeTo(chip[1]![1], 1e-9);
    expect(chip[2]![0]).to.be.closeTo((chip[0]![0] + chip[1]![0]) / 2, 1e-3);
    // A similarity: equal scale on both axes, no shear.
    expect(m[0]).to.be.closeTo(m[4]!, 1e-9);
    expect(m[1]).to.be.closeTo(-m[3]!, 1e-9);
    // The same map in the fitting code's terms: chip points → template.
    expect(m.slice(0, 6)).to.deep.equal(similarityTransform(chip, t));
  });

  it('on LFW: the face-api teacher embeds re-framed five-point crops almost as it embeds chips aligned directly (cos > 0.9)', async function () {
    if (!existsSync(`${LFW}/pairs.txt`)) { console.log(`    skipped: ${LFW} is absent`); this.skip(); }
    const dir = tmpDir('realigned');
    const ctx = testContext(dir);
    const common = { root: `${LFW}/images`, pairsFile: `${LFW}/pairs.txt`, limit: 20 };
    const five = await lfwPairs.create(lfwPairs.options.parse({ ...common, align: 'five-point', size: 112 }), ctx);
    const chip = await lfwPairs.create(lfwPairs.options.parse({ ...common, align: 'dlib-chip', size: 150 }), ctx);
    const keys = (await five.init()).images.slice(0, 12);
    await chip.init();
    const x112 = await five.load(keys), x150 = await chip.load(keys);
    const direct = await ctx.build('teacher', { kind: 'face-api-resnet34' });
    const re = await realignedTeacher.create(realignedTeacher.options.parse({ teacher: { kind: 'face-api-resnet34' } }), ctx) as Teacher;
    expect(re.name).to.equal(`${direct.name}@dlib-chip`);
    const a = await direct.embed(x150), b = await re.embed(x112);
    const cos = tf.tidy(() => tf.sum(tf.mul(tf.div(a, tf.norm(a, 2, 1, true)), tf.div(b, tf.norm(b, 2, 1, true))), 1).dataSync());
    tf.dispose([x112, x150, a, b]);
    direct.dispose(); re.dispose(); five.dispose(); chip.dispose();
    const sorted = Array.from(cos).sort((p, q) => p - q);
    expect(sorted[Math.floor(sorted.length / 2)], `median cos ${sorted.map((c) => c.toFixed(3)).join(' ')}`).to.be.above(0.9);
    expect(sorted[0], 'worst').to.be.above(0.8);
  });
});
