/**
 * What `npm run bench` times: the KD student step (MobileFaceNet, MSE on L2-normalised 128-D embeddings against fixed
 * targets, Adam — the engine's update: tf.variableGrads then applyGradients) and the teacher's inference.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { faceApiModelDir, loadFaceApi } from '../models/face-api-teacher.js';
import { FusedAdam } from '../engine/optimizer.js';
import { fuseConvBiasActivation } from '../models/graph-fusion.js';
import { readModelArtifacts } from '../models/model-files.js';
import { buildMobileFaceNet } from '../models/mobilefacenet.js';
import { parsePairsFile } from '../eval/pairs-file.js';
import { decodeLetterboxed, FaceAligner } from '../images/face-aligner.js';
import { decodeMany } from '../images/decode.js';
import { stackImages } from '../images/stack.js';

export interface Timing {
  /** Seconds per step (or per batch for inference), after the warm-up. */
  readonly stepSec: readonly number[];
  readonly medianStepSec: number;
  /** Images per step. */
  readonly batch: number;
  readonly imagesPerSec: number;
}

export const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/** Runs `once` warmup + steps times; times the last `steps` runs. */
export async function time(once: () => Promise<void>, batch: number, steps: number, warmup: number, onStep?: (sec: number) => void): Promise<Timing> {
  for (let i = 0; i < warmup; i++) await once();
  const stepSec: number[] = [];
  for (let i = 0; i < steps; i++) {
    const t0 = performance.now();
    await once();
    stepSec.push((performance.now() - t0) / 1000);
    onStep?.(stepSec.at(-1)!);
  }
  const m = median(stepSec);
  return { stepSec, medianStepSec: m, batch, imagesPerSec: batch / m };
}

const l2n = (t: tf.Tensor) => tf.div(t, tf.norm(t, 2, 1, true));

/**
 * The student step on the active backend. With microBatch < batch the gradients of batch/microBatch micro-batches
 * are summed before one Adam update (BatchNorm then sees micro-batch statistics, as it would in any accumulation).
 */
export async function timeStudentStep(o: { inputSize: number; batch: number; microBatch: number; steps: number; warmup: number; onStep?: (sec: number) => void }): Promise<Timing> {
  return timeWorkload(studentStepWorkload(o), o);
}

/** A workload: one run of it (read back), and what frees it. */
export interface Workload { readonly once: () => Promise<void>; readonly dispose: () => void }

/** Times a workload's runs (after the warm-up ones), then frees it. */
async function timeWorkload(w: Workload, o: { batch: number; steps: number; warmup: number; onStep?: (sec: number) => void }): Promise<Timing> {
  try {
    return await time(w.once, o.batch, o.steps, o.warmup, o.onStep);
  } finally {
    w.dispose();
  }
}

/** The student step of timeStudentStep, to run (or profile) by hand. */
export function studentStepWorkload(o: { inputSize: number; batch: number; microBatch: number }): Workload {
  if (o.batch % o.microBatch !== 0) throw new Error(`batch ${o.batch} is not a multiple of the micro-batch ${o.microBatch}`);
  const model = buildMobileFaceNet({ inputSize: o.inputSize, width: 1, embeddingDim: 128 }, 1);
  const opt = new FusedAdam(1e-3, 0.9, 0.999); // the engine's Adam (one op per variable where the backend has it)
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const chunks = o.batch / o.microBatch;
  const xs = Array.from({ length: chunks }, (_, i) => tf.randomNormal([o.microBatch, o.inputSize, o.inputSize, 3], 0, 1, 'float32', 11 + i));
  const ts = Array.from({ length: chunks }, (_, i) => tf.tidy(() => l2n(tf.randomNormal([o.microBatch, 128], 0, 1, 'float32', 31 + i))));
  const once = async () => {
    let sum: tf.NamedTensorMap | undefined;
    const losses: tf.Scalar[] = [];
    for (let c = 0; c < chunks; c++) {
      const { value, grads } = tf.variableGrads(() => tf.tidy(() => tf.mean(tf.squaredDifference(l2n(model.apply(xs[c]!, { training: true }) as tf.Tensor), ts[c]!)) as tf.Scalar), vars);
      losses.push(value);
      if (!sum) sum = grads;
      else {
        const next = tf.tidy(() => Object.fromEntries(Object.entries(grads).map(([k, g]) => [k, tf.add(sum![k]!, g)])));
        tf.dispose([...Object.values(sum), ...Object.values(grads)]);
        sum = next;
      }
    }
    opt.applyGradients(sum as Parameters<typeof opt.applyGradients>[0]);
    await losses.at(-1)!.data(); // the step is done when its values are readable
    tf.dispose([...losses, ...Object.values(sum!)]);
  };
  return {
    once,
    dispose: () => {
      opt.dispose();
      model.dispose();
      tf.dispose([...xs, ...ts]);
    },
  };
}

/** The shared SE-MobileFaceNet ArcFace teacher (../shared relative to the package root, where tests and bench run). */
export const SE_MOBILEFACENET_JSON = path.resolve('../shared/models/arcface-semobilefacenet/model.json');

/** Why the SE-MobileFaceNet teacher cannot be timed here, or undefined when its files are present. */
export const seMobileFaceNetMissing = (file = SE_MOBILEFACENET_JSON): string | undefined =>
  existsSync(file) ? undefined : `${file} is absent (the shared models are not on this machine)`;

/**
 * The SE-MobileFaceNet graph model (112 px in, 256-D out) embedding a batch of (x - 127.5) / 128 inputs, read back.
 * `fuse`: load it with Conv2D → BiasAdd → activation chains fused (core/models/graph-fusion.ts), as the graph-model
 * teacher loads it; without, the graph as converted.
 */
export async function graphTeacherWorkload(o: { batch: number; file?: string; fuse?: boolean }): Promise<Workload> {
  const { artifacts } = await readModelArtifacts(o.file ?? SE_MOBILEFACENET_JSON);
  const model = await tf.loadGraphModel(tf.io.fromMemory(o.fuse ? fuseConvBiasActivation(artifacts).artifacts : artifacts));
  const x = tf.tidy(() => tf.div(tf.sub(tf.randomUniform([o.batch, 112, 112, 3], 0, 255, 'float32', 61), 127.5), 128));
  return {
    once: async () => {
      const y = model.execute(x) as tf.Tensor;
      await y.data();
      y.dispose();
    },
    dispose: () => { x.dispose(); model.dispose(); },
  };
}

export async function timeGraphTeacher(o: { batch: number; steps: number; warmup: number; file?: string; fuse?: boolean; onStep?: (sec: number) => void }): Promise<Timing> {
  return timeWorkload(await graphTeacherWorkload(o), o);
}

/**
 * face-api's 68-point landmark net on a batch of 112×112 crops (0..255), as core/images/landmarks.ts runs it
 * (detectLandmarks on an array of 3-D tensors: the net, then the positions read back).
 */
export async function landmarksWorkload(o: { batch: number }): Promise<Workload> {
  const faceapi = loadFaceApi();
  const net = new faceapi.FaceLandmark68Net();
  await net.loadFromDisk(faceApiModelDir());
  const crops = Array.from({ length: o.batch }, (_, i) => tf.randomUniform([112, 112, 3], 0, 255, 'float32', 71 + i) as tf.Tensor3D);
  return {
    once: async () => {
      const res = await net.detectLandmarks(crops.length === 1 ? crops[0] : crops);
      if (!res || (Array.isArray(res) && res.length !== o.batch)) throw new Error('landmark net returned no result');
    },
    dispose: () => { tf.dispose(crops); net.dispose(); },
  };
}

export async function timeLandmarks(o: { batch: number; steps: number; warmup: number; onStep?: (sec: number) => void }): Promise<Timing> {
  return timeWorkload(await landmarksWorkload(o), o);
}

export const LFW_ROOT = path.resolve('../shared/data/lfw-deepfunneled');

/** Why the end-to-end LFW workload cannot run here, or undefined. */
export const lfwMissing = (): string | undefined => seMobileFaceNetMissing()
  ?? (existsSync(path.join(LFW_ROOT, 'pairs.txt')) ? undefined : `${LFW_ROOT}/pairs.txt is absent (the shared data is not on this machine)`);

/**
 * The five-point LFW evaluation's per-image work, end to end and cold (no landmark cache): decode the 250 px JPEG,
 * face-api landmarks in the central half, similarity warp to the ArcFace template, SE-MobileFaceNet (fused, as the
 * graph-model teacher loads it) on the face and its mirror. Each step takes the next `batch` distinct images of
 * View 2's pairs list, so no landmark is found twice.
 */
export async function lfwFivePointWorkload(o: { batch: number }): Promise<Workload> {
  const pairs = await parsePairsFile(path.join(LFW_ROOT, 'pairs.txt'));
  const files = [...new Set(pairs.flatMap((p) => [p.a.path, p.b.path]))];
  const { artifacts } = await readModelArtifacts(SE_MOBILEFACENET_JSON);
  const model = await tf.loadGraphModel(tf.io.fromMemory(fuseConvBiasActivation(artifacts).artifacts));
  const aligner = new FaceAligner({ align: 'five-point' }, 112, undefined, path.join(LFW_ROOT, 'images'));
  let next = 0;
  return {
    once: async () => {
      const batch = files.slice(next, next + o.batch);
      next += o.batch;
      const decoded = await decodeMany(batch, (f) => decodeLetterboxed(path.join(LFW_ROOT, 'images', f), aligner.o.decodeSize));
      const bad = decoded.find((d) => d instanceof Error);
      if (bad) throw bad as Error;
      const x = stackImages(decoded as Exclude<(typeof decoded)[number], Error>[]);
      const r = await aligner.align(x, batch, 'box');
      x.dispose();
      const e = tf.tidy(() => {
        const n = tf.sub(tf.div(r.images, 127.5), 1);
        return tf.add(model.execute(n) as tf.Tensor, model.execute(tf.image.flipLeftRight(n as tf.Tensor4D)) as tf.Tensor); // as evaluate.ts flips
      });
      await e.data();
      tf.dispose([e, r.images]);
    },
    dispose: () => { model.dispose(); aligner.dispose(); },
  };
}

export async function timeLfwFivePoint(o: { batch: number; steps: number; warmup: number; onStep?: (sec: number) => void }): Promise<Timing> {
  return timeWorkload(await lfwFivePointWorkload(o), o);
}

/** The face-api ResNet-34 teacher (150 px) embedding a batch, read back. */
export async function timeTeacher(o: { batch: number; steps: number; warmup: number; onStep?: (sec: number) => void }): Promise<Timing> {
  const faceapi = loadFaceApi();
  const net = new faceapi.FaceRecognitionNet();
  await net.loadFromDisk(faceApiModelDir());
  const images = Array.from({ length: o.batch }, (_, i) => tf.randomUniform([150, 150, 3], 0, 255, 'float32', 51 + i) as tf.Tensor3D);
  const once = async () => {
    const input = await faceapi.toNetInput(images);
    const emb = net.forwardInput(input) as tf.Tensor2D;
    await emb.data();
    emb.dispose();
  };
  try {
    return await time(once, o.batch, o.steps, o.warmup, o.onStep);
  } finally {
    tf.dispose(images);
    net.dispose();
  }
}
