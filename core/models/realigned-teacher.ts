import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { contribution } from '../di/contribution.js';
import { dlibChipPoint, similarityTransform, templateFor, warpFaces, type Point } from '../images/align.js';
import type { Teacher } from '../interfaces/teacher.js';
import { componentField } from '../recipe/fields.js';
import { hashJson } from '../util/hash.js';

/** The five points (eye centres, nose tip, mouth corners) where dlib's face chip puts them (its mean face, landmarks 36/39, 42/45, 30, 48, 54). */
export function dlibChipFivePoints(size: number, padding: number): Point[] {
  const p = (i: number) => dlibChipPoint(i, size, padding);
  const mid = (i: number, j: number): Point => [(p(i)[0] + p(j)[0]) / 2, (p(i)[1] + p(j)[1]) / 2];
  return [mid(36, 39), mid(42, 45), p(30), p(48), p(54)];
}

/**
 * The chip → crop map (tf.image.transform's output → input form) that re-frames an ArcFace
 * five-point crop of side `from` as a dlib face chip of side `size`: the least-squares
 * similarity from the chip's five points to the template's. A fixed map: both frames are
 * fitted to the same landmarks, so one face's chip is (up to the fits' residuals) this warp of
 * its crop; what the chip shows beyond the crop is black.
 */
export function fivePointToChipTransform(from: number, size: number, padding: number): number[] {
  return [...similarityTransform(dlibChipFivePoints(size, padding), templateFor(from)), 0, 0];
}

export const realignedTeacherOptions = z.object({
  teacher: componentField('teacher').describe('the teacher that wants its own alignment (e.g. face-api-resnet34: dlib face chips)'),
  to: z.literal('dlib-chip').default('dlib-chip').describe('the frame the teacher was trained on'),
  size: z.number().int().min(32).max(512).default(150).describe('side of the chip the teacher gets'),
  padding: z.number().min(0).max(1).default(0.25).describe('dlib chip padding (get_face_chip_details: 0.25)'),
});

/**
 * A teacher given the faces of a five-point aligned pipeline (the ArcFace 112 px template)
 * re-framed to its own alignment before it embeds them, so teachers trained on different
 * crops can share one data stream (MST-KD's multi-teacher over the SE-MobileFaceNet and
 * face-api's dlib ResNet-34).
 */
class RealignedTeacher implements Teacher {
  readonly name: string;
  readonly contract: Teacher['contract'];
  readonly embeddingDim: number;
  readonly weightsHash: string;
  readonly paramCount: number;

  constructor(private readonly inner: Teacher, private readonly o: z.infer<typeof realignedTeacherOptions>) {
    this.name = `${inner.name}@${o.to}`;
    this.contract = { ...inner.contract, crop: `five-point crop re-framed to a ${o.to} (${o.size} px, padding ${o.padding})` };
    this.embeddingDim = inner.embeddingDim;
    this.weightsHash = hashJson({ inner: inner.weightsHash, to: o.to, size: o.size, padding: o.padding });
    this.paramCount = inner.paramCount;
  }

  async embed(images: tf.Tensor4D): Promise<tf.Tensor2D> {
    const n = images.shape[0], side = images.shape[1];
    const m = fivePointToChipTransform(side, this.o.size, this.o.padding);
    const chips = warpFaces(images, Array.from({ length: n }, () => m), this.o.size);
    try {
      return await this.inner.embed(chips);
    } finally {
      chips.dispose();
    }
  }

  dispose(): void { this.inner.dispose(); }
}

export const realignedTeacher = contribution({
  slot: 'teacher',
  kind: 'realigned',
  summary: 'a teacher fed five-point (ArcFace) crops re-framed to its own alignment (dlib face chip), for mixing teachers of different crops',
  options: realignedTeacherOptions,
  async create(o, ctx) { return new RealignedTeacher(await ctx.build('teacher', o.teacher), o); },
});
