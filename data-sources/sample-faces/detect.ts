import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import sharp from 'sharp';
import { decodeImage, ensureDir, faceApiModelDir, hashFiles, loadFaceApi, writeFileAtomic, type Logger } from '../../core/index.js';

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
 * Detects faces with face-api's SSD MobileNet (weights from node_modules) and stores square
 * context crops around each box. Cached on disk by the hash of photos + detector weights.
 */
export async function detectSampleFaces(cacheDir: string, minConfidence: number, log: Logger): Promise<FaceCrops> {
  const photos = samplePhotos();
  if (photos.length === 0) throw new Error('sample-faces: the @vladmandic/face-api demo photos are missing from node_modules');
  const modelDir = faceApiModelDir();
  const hash = (await hashFiles([...photos, path.join(modelDir, 'ssd_mobilenetv1_model.bin')])).slice(0, 16) + `-c${minConfidence}`;
  const dir = path.join(cacheDir, 'sample-faces', hash);
  const dataFile = path.join(dir, 'crops.u8');
  const metaFile = path.join(dir, 'crops.json');
  if (existsSync(dataFile) && existsSync(metaFile)) {
    const meta = JSON.parse(await readFile(metaFile, 'utf8')) as { count: number; sources: string[] };
    const buf = await readFile(dataFile);
    return { data: new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength), count: meta.count, sources: meta.sources, hash };
  }
  log.info(`sample-faces: detecting faces in ${photos.length} photos shipped with @vladmandic/face-api (cached in ${dir})`);
  const faceapi = loadFaceApi();
  const net = new faceapi.SsdMobilenetv1();
  await net.loadFromDisk(modelDir);
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
    for (const d of dets) {
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
      sources.push(`${path.basename(photo)} box ${[d.box.x, d.box.y, d.box.width, d.box.height].map(Math.round).join(',')} score ${d.score.toFixed(3)}`);
    }
  }
  net.dispose();
  if (crops.length < 2) throw new Error(`sample-faces: found ${crops.length} faces; need at least 2`);
  const all = new Uint8Array(crops.length * CONTEXT_SIZE * CONTEXT_SIZE * 3);
  crops.forEach((c, i) => all.set(c, i * c.length));
  await ensureDir(dir);
  await writeFileAtomic(dataFile, all);
  await writeFileAtomic(metaFile, JSON.stringify({ count: crops.length, sources }, null, 1));
  log.info(`sample-faces: ${crops.length} faces`);
  return { data: all, count: crops.length, sources, hash };
}
