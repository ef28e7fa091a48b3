import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import sharp from 'sharp';
import { decodeImage, ensureDir, faceApiModelDir, hashFiles, loadFaceApi, writeFileAtomic, type Logger } from '../../core/index.js';
import { PREPROCESSING_VERSION } from '../../core/cache/preprocessing-version.js';
import { alignFaces, ARCFACE_TEMPLATE, type Point } from '../../core/images/align.js';
import { FaceLandmarker } from '../../core/images/landmarks.js';

const require = createRequire(import.meta.url);

/** Side of the stored context crop, in px. Views are cut from its centre. */
export const CONTEXT_SIZE = 192;
/** Context crop side relative to the detected box side. */
export const CONTEXT_SCALE = 1.8;

/** The photos that npm packages ship: the embedded default needs nothing else. */
export function samplePhotos(): string[] {
  const demo = path.join(path.dirname(require.resolve('@vladmandic/face-api/package.json')), 'demo');
  return [1, 2, 3, 4, 5, 6].map((i) => path.join(demo, `sample${i}.jpg`)).filter((f) => existsSync(f));
}

export interface FaceCrops {
  /** [faces, CONTEXT_SIZE, CONTEXT_SIZE, 3] uint8 RGB, row-major. */
  readonly data: Uint8Array;
  readonly count: number;
  readonly sources: readonly string[];
  readonly hash: string;
}

/**
 * Where the ArcFace 112 px template lands in an aligned context crop: its 112 px frame fills
 * the centre CONTEXT_SIZE/CONTEXT_SCALE px, where an unaligned crop has the detected box, so
 * views (margin, jitter) frame aligned and unaligned faces alike.
 */
export function contextTemplate(): Point[] {
  const box = CONTEXT_SIZE / CONTEXT_SCALE, c = CONTEXT_SIZE / 2;
  return ARCFACE_TEMPLATE.map(([x, y]) => [c + ((x - 56) * box) / 112, c + ((y - 56) * box) / 112]);
}

/**
 * Detects faces with face-api's SSD MobileNet (weights from node_modules) and stores square
 * context crops around each box; with `align`, face-api's 68-point landmarks (reduced to 5)
 * warp each face by a similarity onto the ArcFace template instead (strategy-specs §7.9).
 * Cached on disk (`<cacheDir>/sample-faces/<key>/`) by the hash of photos + model weights +
 * options + the preprocessing version (PREPROCESSING_VERSION; injectable for tests).
 */
export async function detectSampleFaces(cacheDir: string, minConfidence: number, log: Logger, align = false, preprocessingVersion = PREPROCESSING_VERSION): Promise<FaceCrops> {
  const photos = samplePhotos();
  if (photos.length === 0) throw new Error('sample-faces: the @vladmandic/face-api demo photos are missing from node_modules');
  const modelDir = faceApiModelDir();
  const weights = [path.join(modelDir, 'ssd_mobilenetv1_model.bin'), ...(align ? [path.join(modelDir, 'face_landmark_68_model.bin')] : [])];
  const hash = (await hashFiles([...photos, ...weights])).slice(0, 16) + `-c${minConfidence}${align ? '-aligned' : ''}-p${preprocessingVersion}`;
  const dir = path.join(cacheDir, 'sample-faces', hash);
  const dataFile = path.join(dir, 'crops.u8');
  const metaFile = path.join(dir, 'crops.json');
  if (existsSync(dataFile) && existsSync(metaFile)) {
    const meta = JSON.parse(await readFile(metaFile, 'utf8')) as { count: number; sources: string[] };
    const buf = await readFile(dataFile);
    return { data: new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength), count: meta.count, sources: meta.sources, hash };
  }
  log.info(`sample-faces: detecting${align ? ' and aligning' : ''} faces in ${photos.length} photos shipped with @vladmandic/face-api (cached in ${dir})`);
  const faceapi = loadFaceApi();
  const net = new faceapi.SsdMobilenetv1();
  await net.loadFromDisk(modelDir);
  const landmarker = align ? await FaceLandmarker.load() : undefined;
  const crops: Uint8Array[] = [];
  const sources: string[] = [];
  for (const photo of photos) {
    const { data, info } = await sharp(photo).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const img = tf.tensor3d(new Uint8Array(data), [info.height, info.width, 3], 'int32');
    let dets: { box: { x: number; y: number; width: number; height: number }; score: number }[];
    try {
      dets = await net.locateFaces(img, new faceapi.SsdMobilenetv1Options({ minConfidence }));
    } finally {
      img.dispose();
    }
    // Left to right, top to bottom: a stable face order for a given photo.
    dets.sort((a, b) => a.box.x - b.box.x || a.box.y - b.box.y);
    const photo4 = landmarker ? tf.tensor4d(Float32Array.from(data), [1, info.height, info.width, 3]) : undefined;
    for (const d of dets) {
      const where = `${path.basename(photo)} box ${[d.box.x, d.box.y, d.box.width, d.box.height].map(Math.round).join(',')} score ${d.score.toFixed(3)}`;
      if (landmarker) {
        const aligned = await alignedCrop(photo4!, landmarker, d.box);
        if (aligned instanceof Error) { log.warn(`sample-faces: ${where}: ${aligned.message}`); continue; }
        crops.push(aligned.data);
        sources.push(`${where} aligned (5 points ${aligned.points.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(' ')})`);
        continue;
      }
      const side = Math.max(d.box.width, d.box.height) * CONTEXT_SCALE;
      const cx = d.box.x + d.box.width / 2, cy = d.box.y + d.box.height / 2;
      const left = Math.round(cx - side / 2), top = Math.round(cy - side / 2), s = Math.round(side);
      // Extend with black where the square leaves the photo.
      const ext = {
        top: Math.max(0, -top), left: Math.max(0, -left),
        bottom: Math.max(0, top + s - info.height), right: Math.max(0, left + s - info.width),
      };
      const buf = await sharp(photo).removeAlpha()
        .extend({ ...ext, background: { r: 0, g: 0, b: 0 } })
        .extract({ left: left + ext.left, top: top + ext.top, width: s, height: s })
        .png().toBuffer();
      crops.push((await decodeImage(buf, { size: CONTEXT_SIZE })).data);
      sources.push(where);
    }
    photo4?.dispose();
  }
  net.dispose();
  landmarker?.dispose();
  if (crops.length < 2) throw new Error(`sample-faces: found ${crops.length} faces; need at least 2`);
  const all = new Uint8Array(crops.length * CONTEXT_SIZE * CONTEXT_SIZE * 3);
  crops.forEach((c, i) => all.set(c, i * c.length));
  await ensureDir(dir);
  await writeFileAtomic(dataFile, all);
  await writeFileAtomic(metaFile, JSON.stringify({ count: crops.length, sources }, null, 1));
  log.info(`sample-faces: ${crops.length} faces`);
  return { data: all, count: crops.length, sources, hash };
}

/** The aligned context crop of one detected face (uint8 RGB), or why it was rejected. */
async function alignedCrop(img: tf.Tensor4D, lm: FaceLandmarker, box: { x: number; y: number; width: number; height: number }): Promise<{ data: Uint8Array; points: Point[] } | Error> {
  try {
    const [points] = await lm.fivePoints(img, [box]);
    const out = alignFaces(img, [points!], CONTEXT_SIZE, contextTemplate());
    const px = await out.data();
    out.dispose();
    return { data: Uint8Array.from(px, (v) => Math.max(0, Math.min(255, Math.round(v)))), points: points! };
  } catch (e) {
    return e as Error;
  }
}
