/**
 * Face alignment as a preprocessing step shared by evaluation pairs and training folders: decode, 68 landmarks
 * (face-api's landmark net in a box around the image centre, cached on disk), then a similarity warp to the ArcFace
 * 5-point template (`five-point`) or to dlib's face chip (`dlib-chip`).
 */
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { PREPROCESSING_VERSION } from '../cache/preprocessing-version.js';
import { writeFileAtomic } from '../util/fs.js';
import { hashJson } from '../util/hash.js';
import { dlibChipTransform, fivePointsFrom68, inverseSimilarity, similarityTransform, type Point, warpFaces } from './align.js';
import type { RgbImage } from './decode.js';
import { type Box, FaceLandmarker, zoomedTemplate } from './landmarks.js';

/** Alignment settings with every default filled in. */
export interface AlignmentOptions {
  readonly align: 'none' | 'five-point' | 'dlib-chip';
  readonly alignBox: number;
  readonly alignCentre: readonly [number, number];
  readonly alignZoom: number;
  readonly alignPadding: number;
  readonly decodeSize: number;
}
const DEFAULTS: AlignmentOptions = { align: 'none', alignBox: 0.5, alignCentre: [0.5, 0.5], alignZoom: 1, alignPadding: 0.25, decodeSize: 250 };

/**
 * Recipe options of alignment, the same for every source that aligns (spread into its zod schema). Optional with
 * no default written into merged recipes, so recipes that do not align keep their hash (finished runs stay finished);
 * `resolveAlignment` fills the defaults.
 */
export const alignmentFields = {
  align: z.enum(['none', 'five-point', 'dlib-chip']).optional()
    .describe('none (default); five-point: face-api 68-point landmarks → similarity to the ArcFace 112 px template (strategy-specs 7.9); dlib-chip: the same landmarks → dlib\'s face chip (get_face_chip_details), what dlib/face-api ResNet-34 was trained on'),
  alignBox: z.number().gt(0).max(1).optional().describe('side of the box the landmark net searches, as a fraction of the image\'s longer side (default 0.5)'),
  alignCentre: z.tuple([z.number().min(0).max(1), z.number().min(0).max(1)]).optional()
    .describe('centre of that box as fractions [x, y] of the decoded square, whose side is the image\'s longer side (default [0.5, 0.5]; CelebA\'s portrait images: [0.5, 0.57])'),
  alignZoom: z.number().gt(0).max(2).optional().describe('five-point: template scale about the centre, < 1 keeps more context (default 1)'),
  alignPadding: z.number().min(0).max(1).optional().describe('dlib-chip: padding around the face as a fraction of it (default 0.25, as dlib\'s face recognition)'),
  decodeSize: z.number().int().positive().optional().describe('aligned sources: the image\'s longer side is decoded at this many px before landmarks and warp (default 250)'),
};

/** The alignment options of a source's parsed options, defaults filled. */
export function resolveAlignment(o: Partial<Record<keyof AlignmentOptions, unknown>>): AlignmentOptions {
  const pick = <K extends keyof AlignmentOptions>(k: K): AlignmentOptions[K] => (o[k] ?? DEFAULTS[k]) as AlignmentOptions[K];
  return { align: pick('align'), alignBox: pick('alignBox'), alignCentre: pick('alignCentre'), alignZoom: pick('alignZoom'), alignPadding: pick('alignPadding'), decodeSize: pick('decodeSize') };
}

const require = createRequire(import.meta.url);
/** The code that finds landmarks: its versions key the landmark cache with PREPROCESSING_VERSION. */
export const LANDMARK_CODE = {
  net: 'face-api-landmark68',
  faceApi: (require('@vladmandic/face-api/package.json') as { version: string }).version,
  decoder: `sharp ${sharp.versions.sharp} vips ${sharp.versions.vips} mozjpeg ${sharp.versions.mozjpeg ?? ''}`,
};

/** What a report says about the crop. */
export function alignmentDescription(options: Partial<Record<keyof AlignmentOptions, unknown>>, size: number): string {
  const o = resolveAlignment(options);
  if (o.align === 'five-point') return `5-point aligned (ArcFace template) from face-api landmarks, ${size} px, zoom ${o.alignZoom}`;
  if (o.align === 'dlib-chip') return `dlib face chip (padding ${o.alignPadding}) from face-api landmarks, ${size} px`;
  return 'not landmark-aligned';
}

/** The options that change landmarks (not the warp): they key the landmark cache. */
const landmarkScope = (o: AlignmentOptions) => ({ box: o.alignBox, centre: o.alignCentre, decodeSize: o.decodeSize });

/**
 * Decodes a file for alignment: the longer side scaled to `side`, centred on a black side×side square (so images of
 * any aspect stack into one batch without being stretched).
 */
export async function decodeLetterboxed(file: string, side: number): Promise<RgbImage> {
  const { data } = await sharp(file, { failOn: 'error' })
    .resize(side, side, { fit: 'contain', background: { r: 0, g: 0, b: 0 } })
    .removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  if (data.length !== side * side * 3) throw new Error(`unexpected channel count decoding ${file}`);
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), size: side };
}

/**
 * 68-point landmarks per image, kept on disk under `<cacheDir>/landmarks/`: one file per (landmark net, source root,
 * landmark options, PREPROCESSING_VERSION); rows keyed by the file's path, byte size and mtime, so a replaced image is
 * looked at again. Written with one atomic rename (parallel runs over the same folder may save the same file).
 */
export class LandmarkCache {
  private readonly rows = new Map<string, Float32Array>();
  private unsaved = 0;
  readonly file?: string;

  constructor(cacheDir: string | undefined, scope: unknown, private readonly version = PREPROCESSING_VERSION) {
    if (cacheDir) this.file = path.join(cacheDir, 'landmarks', `${hashJson({ ...LANDMARK_CODE, version, scope }).slice(0, 24)}.json`);
  }

  async load(): Promise<void> {
    if (!this.file || !existsSync(this.file)) return;
    try {
      const v = JSON.parse(await readFile(this.file, 'utf8')) as { version: number; rows: Record<string, number[]> };
      if (v.version !== this.version) return;
      for (const [k, r] of Object.entries(v.rows)) {
        if (Array.isArray(r) && r.length === 136 && r.every((x) => typeof x === 'number' && Number.isFinite(x))) this.rows.set(k, Float32Array.from(r));
      }
    } catch {
      // torn or foreign: recompute
    }
  }

  get(key: string): Point[] | undefined {
    const r = this.rows.get(key);
    return r ? Array.from({ length: 68 }, (_, i): Point => [r[2 * i]!, r[2 * i + 1]!]) : undefined;
  }

  /** Keeps finite landmarks only (JSON would write NaN as null, read back as 0): others are searched again next time. */
  set(key: string, p: readonly Point[]): void {
    if (p.length !== 68 || !p.every(([x, y]) => Number.isFinite(x) && Number.isFinite(y))) return;
    this.rows.set(key, Float32Array.from(p.flat()));
    this.unsaved++;
  }

  get size(): number { return this.rows.size; }

  /** Writes the file when rows were added; with `atLeast`, only once that many are unsaved (the file is rewritten whole). */
  async save(atLeast = 1): Promise<void> {
    if (!this.file || this.unsaved < atLeast) return;
    const text = this.serialise();
    await writeFileAtomic(this.file, text);
  }


  /** The same, synchronously: for dispose(), which a process may follow with exit. */
  saveSync(): void {
    if (!this.file || this.unsaved === 0) return;
    const text = this.serialise();
    mkdirSync(path.dirname(this.file), { recursive: true });
    const tmp = `${this.file}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
    writeFileSync(tmp, text);
    renameSync(tmp, this.file);
  }

  private serialise(): string {
    const rows: Record<string, number[]> = {};
    // Float32 values printed with 9 significant digits: they read back to the same float.
    for (const [k, r] of this.rows) rows[k] = Array.from(r, (x) => Number(x.toPrecision(9)));
    this.unsaved = 0;
    return JSON.stringify({ version: this.version, rows });
  }
}

/** Why a face is refused: landmarks that cannot be a face found in the search box. */
export function implausibleLandmarks(p: readonly Point[], box: Box): string | undefined {
  if (p.some(([x, y]) => !Number.isFinite(x) || !Number.isFinite(y))) return 'landmarks are not finite';
  const [le, re] = fivePointsFrom68(p);
  const eyes = Math.hypot(re![0] - le![0], re![1] - le![1]);
  // face-api's net always answers; on a crop with no face its points collapse or leave the box.
  if (eyes < 0.08 * box.width) return `eyes ${eyes.toFixed(1)} px apart in a ${box.width.toFixed(0)} px box: no face found`;
  if (re![0] <= le![0]) return 'the right eye is left of the left eye: no upright face found';
  return undefined;
}

export interface AlignedBatch {
  /** [M, size, size, 3] for the M images that aligned, in input order. */
  readonly images: tf.Tensor4D;
  /** Input indices of those M images. */
  readonly kept: readonly number[];
  /** Input indices that did not align, with why. */
  readonly failed: readonly { readonly index: number; readonly reason: string }[];
}

/** Aligns batches of decoded images for one source (one root, one set of options). */
export class FaceAligner {
  private landmarker?: Promise<FaceLandmarker>;
  readonly cache: LandmarkCache;
  landmarksComputed = 0;

  readonly o: AlignmentOptions;
  constructor(options: Partial<Record<keyof AlignmentOptions, unknown>>, readonly size: number, cacheDir: string | undefined, root: string) {
    const o = (this.o = resolveAlignment(options));
    if (o.align === 'none') throw new Error('FaceAligner: align is none');
    this.cache = new LandmarkCache(cacheDir, { root: path.resolve(root), ...landmarkScope(o) });
  }

  private loaded?: Promise<void>;
  /** Reads the landmark cache file once; later calls wait for that read. */
  init(): Promise<void> { return (this.loaded ??= this.cache.load()); }

  /** The search box for a decodeSize×decodeSize letterboxed image. */
  box(): Box {
    const s = this.o.decodeSize, side = s * this.o.alignBox;
    return { x: this.o.alignCentre[0] * s - side / 2, y: this.o.alignCentre[1] * s - side / 2, width: side, height: side };
  }

  /** Cache key of one file: its path, byte size and mtime. */
  static async fileKey(file: string): Promise<string> {
    const s = await stat(file);
    return `${file}|${s.size}|${Math.round(s.mtimeMs)}`;
  }

  /** 68 landmarks per image (cached by `keys`). images: [N, decodeSize, decodeSize, 3] letterboxed. */
  async landmarks(images: tf.Tensor4D, keys: readonly string[]): Promise<Point[][]> {
    const out: (Point[] | undefined)[] = keys.map((k) => this.cache.get(k));
    const todo = out.flatMap((p, i) => (p ? [] : [i]));
    if (todo.length > 0) {
      this.landmarker ??= FaceLandmarker.load();
      const lm = await this.landmarker;
      const sub = todo.length === keys.length ? images : tf.gather(images, todo) as tf.Tensor4D;
      try {
        const found = await lm.points68(sub, todo.map(() => this.box()));
        // Used as stored (float32), so a run that reads them from the cache aligns bit for bit the same.
        todo.forEach((i, j) => { this.cache.set(keys[i]!, found[j]!); out[i] = this.cache.get(keys[i]!) ?? found[j]!; });
        this.landmarksComputed += todo.length;
      } finally {
        if (sub !== images) sub.dispose();
      }
    }
    return out as Point[][];
  }

  /** The output → input transform of one face, or why it cannot be aligned. */
  transform(p68: readonly Point[]): number[] | string {
    const bad = implausibleLandmarks(p68, this.box());
    if (bad) return bad;
    try {
      if (this.o.align === 'dlib-chip') return dlibChipTransform(p68, this.size, this.o.alignPadding);
      return inverseSimilarity(similarityTransform(fivePointsFrom68(p68), zoomedTemplate(this.size, this.o.alignZoom)));
    } catch (e) {
      return (e as Error).message;
    }
  }

  /** The search box itself, resized to size×size: the crop used where a benchmark image's face cannot be aligned. */
  private boxTransform(): number[] {
    const b = this.box(), k = b.width / this.size;
    return [k, 0, b.x + (k - 1) / 2, 0, k, b.y + (k - 1) / 2, 0, 0];
  }

  /**
   * Landmarks (cached), then the warp. `skip` (training data): faces whose landmarks are implausible are left out
   * and reported. `box` (benchmarks, where no image may be dropped): such a face is cropped to the search box instead,
   * and reported the same way.
   */
  async align(images: tf.Tensor4D, keys: readonly string[], onFailure: 'skip' | 'box' = 'skip'): Promise<AlignedBatch> {
    const points = await this.landmarks(images, keys);
    const kept: number[] = [], transforms: number[][] = [], failed: { index: number; reason: string }[] = [];
    points.forEach((p, i) => {
      const t = this.transform(p);
      if (typeof t === 'string') failed.push({ index: i, reason: `alignment: ${t}` });
      if (typeof t !== 'string' || onFailure === 'box') { kept.push(i); transforms.push(typeof t === 'string' ? this.boxTransform() : t); }
    });
    if (kept.length === 0) return { images: tf.zeros([0, this.size, this.size, 3]) as tf.Tensor4D, kept, failed };
    const src = kept.length === keys.length ? images : tf.gather(images, kept) as tf.Tensor4D;
    try {
      return { images: warpFaces(src, transforms, this.size), kept, failed };
    } finally {
      if (src !== images) src.dispose();
    }
  }

  /**
   * Saves new landmarks; `atLeast` batches the rewrites of a large cache file while a source is still loading. A cache
   * that cannot be written costs a recomputation next time, never the run.
   */
  async save(atLeast = 1): Promise<void> {
    try { await this.cache.save(atLeast); } catch { /* see above */ }
  }

  dispose(): void {
    try { this.cache.saveSync(); } catch { /* a cache that cannot be written is recomputed next time */ }
    void this.landmarker?.then((l) => l.dispose(), () => undefined);
  }
}
