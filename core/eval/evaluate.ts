import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { PairGroups, PairSource, VerificationPair } from '../interfaces/pair-source.js';
import type { SampleKey } from '../interfaces/data-source.js';
import { PREPROCESSING_VERSION } from '../cache/preprocessing-version.js';
import { writeFileAtomic } from '../util/fs.js';
import { decisionAgreement, meanCosine, spearman } from './agreement.js';
import { evaluateGroups, type FairnessSettings, type GroupEvaluation } from './groups.js';
import { kfoldAccuracy, pairDistances, rocAuc, rocCurve, tarAtFar, type RocCurve } from './verification.js';

/** Embeds [N,H,W,3] 0..255 images; returns [N, D] (caller disposes). */
export type EmbedFn = (images: tf.Tensor4D) => Promise<tf.Tensor2D>;

export interface EvalSettings {
  readonly flip: boolean;
  readonly batchSize: number;
  readonly far: readonly number[];
  /** Per-group metrics settings (7.7); defaults stdDdof 1, kfold. */
  readonly fairness?: FairnessSettings;
}

export interface PairSet {
  readonly source: PairSource;
  readonly pairs: readonly VerificationPair[];
  readonly images: readonly SampleKey[];
  readonly listHash: string;
  readonly groups?: PairGroups;
}

export interface VerificationResult {
  readonly protocol: string;
  readonly pairs: number;
  readonly flip: boolean;
  /** Mean 10-fold accuracy (fraction) and its population std. */
  readonly accuracy: number;
  readonly std: number;
  readonly foldAccuracies: readonly number[];
  readonly thresholds: readonly number[];
  /** TPR at each target FAR (nearest-FPR rule, strategy-specs 7.6), keyed by the FAR as written. */
  readonly tarAtFar: Readonly<Record<string, number>>;
  readonly auc: number;
  /** The ROC (score = cos), thinned for plots: corners only, at most ROC_POINTS points. */
  readonly roc: { readonly fpr: readonly number[]; readonly tpr: readonly number[] };
  /** Per-group metrics where the pair source labels groups. */
  readonly groups?: GroupEvaluation;
  readonly imagesPerSec: number;
}

export const ROC_POINTS = 200;

/**
 * Drops ROC points that lie on the segment between their neighbours (they change no plot),
 * then keeps evenly spaced points (first and last included) if more than `max` remain.
 */
export function thinRoc(roc: RocCurve, max = ROC_POINTS): { fpr: number[]; tpr: number[] } {
  const n = roc.fpr.length;
  const keep: number[] = [];
  for (let i = 0; i < n; i++) {
    if (i === 0 || i === n - 1) { keep.push(i); continue; }
    const [x0, y0, x1, y1, x2, y2] = [roc.fpr[keep.at(-1)!]!, roc.tpr[keep.at(-1)!]!, roc.fpr[i]!, roc.tpr[i]!, roc.fpr[i + 1]!, roc.tpr[i + 1]!];
    if (Math.abs((x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)) > 1e-12) keep.push(i);
  }
  const picked = keep.length <= max ? keep : Array.from({ length: max }, (_, j) => keep[Math.round(j * (keep.length - 1) / (max - 1))]!);
  const r6 = (x: number) => Math.round(x * 1e6) / 1e6;
  return { fpr: picked.map((i) => r6(roc.fpr[i]!)), tpr: picked.map((i) => r6(roc.tpr[i]!)) };
}

/** Unit embeddings, one per image, computed once and cached on disk beside the run. */
export class EmbeddingTable {
  constructor(readonly keys: readonly SampleKey[], readonly dim: number, readonly data: Float32Array) {}
  private index?: Map<SampleKey, number>;
  row(k: SampleKey): Float32Array {
    this.index ??= new Map(this.keys.map((key, i) => [key, i]));
    const i = this.index.get(k);
    if (i === undefined) throw new Error(`no embedding for ${k}`);
    return this.data.subarray(i * this.dim, (i + 1) * this.dim);
  }
}

function normaliseRows(data: Float32Array, dim: number): void {
  for (let i = 0; i < data.length; i += dim) {
    let s = 0;
    for (let j = 0; j < dim; j++) s += data[i + j]! ** 2;
    const n = Math.max(Math.sqrt(s), 1e-12);
    for (let j = 0; j < dim; j++) data[i + j]! /= n;
  }
}

/**
 * What a cached embedding file must have been computed from to be reused: the pair set's list
 * hash (its images and the source's options, e.g. lfw-pairs' align/alignZoom), the model, the
 * flip test and the version of the image preparation code.
 */
export function embeddingCacheTag(listHash: string, modelHash: string, flip: boolean, preprocessingVersion = PREPROCESSING_VERSION): string {
  return `${listHash}|${modelHash}|flip=${flip}|preprocessing=${preprocessingVersion}`;
}

async function readEmbeddingMeta(file: string): Promise<{ tag: string; dim: number; n: number } | undefined> {
  try {
    const m = JSON.parse(await readFile(file, 'utf8')) as { tag?: unknown; dim?: unknown; n?: unknown };
    return typeof m.tag === 'string' && typeof m.dim === 'number' && typeof m.n === 'number' ? { tag: m.tag, dim: m.dim, n: m.n } : undefined;
  } catch {
    return undefined; // torn or foreign: recompute
  }
}

/**
 * Embeds every image of the pair set once (flip test: g(x) + g(flip(x)), then n(·)). With a
 * `cacheFile`, reuses it only when its tag (`embeddingCacheTag`) matches, else recomputes and
 * overwrites it. `preprocessingVersion` is PREPROCESSING_VERSION but for tests.
 */
export async function embedImages(set: PairSet, embed: EmbedFn, s: EvalSettings, cacheFile?: string, modelHash = '', onProgress?: (done: number, total: number) => void, preprocessingVersion = PREPROCESSING_VERSION): Promise<{ table: EmbeddingTable; seconds: number }> {
  const tag = embeddingCacheTag(set.listHash, modelHash, s.flip, preprocessingVersion);
  if (cacheFile && existsSync(cacheFile) && existsSync(cacheFile + '.json')) {
    const meta = await readEmbeddingMeta(cacheFile + '.json');
    if (meta?.tag === tag && meta.n === set.images.length) {
      const b = await readFile(cacheFile);
      // A data file of another shape (torn, or written beside another meta) is recomputed.
      if (b.byteLength === set.images.length * meta.dim * 4) {
        return { table: new EmbeddingTable(set.images, meta.dim, new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength))), seconds: 0 };
      }
    }
  }
  const t0 = performance.now();
  const chunks: Float32Array[] = [];
  let dim = 0;
  for (let i = 0; i < set.images.length; i += s.batchSize) {
    const images = await set.source.load(set.images.slice(i, i + s.batchSize));
    try {
      let e = await embed(images);
      if (s.flip) {
        const flipped = tf.image.flipLeftRight(images);
        const ef = await embed(flipped);
        flipped.dispose();
        const sum = tf.add(e, ef) as tf.Tensor2D;
        tf.dispose([e, ef]);
        e = sum;
      }
      dim = e.shape[1];
      chunks.push((await e.data()) as Float32Array);
      e.dispose();
      onProgress?.(Math.min(i + s.batchSize, set.images.length), set.images.length);
    } finally {
      images.dispose();
    }
  }
  const data = new Float32Array(set.images.length * dim);
  let off = 0;
  for (const c of chunks) { data.set(c, off); off += c.length; }
  normaliseRows(data, dim);
  const seconds = (performance.now() - t0) / 1000;
  if (cacheFile) {
    await writeFileAtomic(cacheFile, new Uint8Array(data.buffer));
    await writeFileAtomic(cacheFile + '.json', JSON.stringify({ tag, dim, n: set.images.length }));
  }
  return { table: new EmbeddingTable(set.images, dim, data), seconds };
}

/** Squared L2 distance of the unit embeddings of each pair (d = 2 − 2cos). */
export function distancesOf(pairs: readonly VerificationPair[], t: EmbeddingTable): Float64Array {
  return pairDistances(pairs.map((p) => t.row(p.a)), pairs.map((p) => t.row(p.b)));
}

export function verify(set: PairSet, table: EmbeddingTable, s: EvalSettings, seconds: number): VerificationResult & { dist: Float64Array; predictions: readonly boolean[] } {
  const dist = distancesOf(set.pairs, table);
  const same = set.pairs.map((p) => p.same);
  const k = kfoldAccuracy(dist, same);
  const scores = Array.from(dist, (d) => 1 - d / 2);
  const tar = tarAtFar(scores, same, s.far);
  return {
    protocol: set.source.protocol, pairs: set.pairs.length, flip: s.flip,
    accuracy: k.accuracy, std: k.std, foldAccuracies: k.foldAccuracies, thresholds: k.thresholds,
    tarAtFar: Object.fromEntries(s.far.map((f) => [String(f), tar.tpr[String(f)]!])),
    auc: rocAuc(scores, same),
    roc: thinRoc(rocCurve(scores, same)),
    ...(set.groups ? { groups: evaluateGroups(set.groups, set.pairs.map((p) => p.group), dist, same, k.predictions, s.fairness) } : {}),
    imagesPerSec: seconds > 0 ? set.images.length * (s.flip ? 2 : 1) / seconds : NaN,
    dist, predictions: k.predictions,
  };
}

export interface AgreementResult {
  /** Mean cosine of teacher and student embeddings of the same image (null when dims differ). */
  readonly meanCosine: number | null;
  /** Spearman correlation of teacher and student pair scores. */
  readonly spearman: number;
  /** Share of pairs where both models make the same held-out decision. */
  readonly decisionAgreement: number;
}

export function agreement(teacher: { table: EmbeddingTable; dist: Float64Array; predictions: readonly boolean[] }, student: { table: EmbeddingTable; dist: Float64Array; predictions: readonly boolean[] }, images: readonly SampleKey[]): AgreementResult {
  const sameDim = teacher.table.dim === student.table.dim;
  return {
    meanCosine: sameDim ? meanCosine(images.map((k) => teacher.table.row(k)), images.map((k) => student.table.row(k))) : null,
    spearman: spearman(Array.from(teacher.dist), Array.from(student.dist)),
    decisionAgreement: decisionAgreement(teacher.predictions, student.predictions),
  };
}

/**
 * A frozen model's evaluation embeddings in the shared cache folder, one file per (model, pair
 * set, flip, preprocessing version): every run and ablation cell with that teacher and benchmark
 * reuses them, and a bump of PREPROCESSING_VERSION names another file (the old one is never read).
 */
export function sharedEmbeddingCacheFile(cacheDir: string, model: string, key: string, preprocessingVersion = PREPROCESSING_VERSION): string {
  return path.join(cacheDir, 'eval-embeddings', `${model.replace(/[^A-Za-z0-9._-]/g, '_')}-${key.slice(0, 16)}-p${preprocessingVersion}.embeddings.f32`);
}
