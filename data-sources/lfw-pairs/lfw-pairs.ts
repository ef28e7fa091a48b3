import { existsSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import {
  contribution, contributionModule, decodeImage, existingPath, hashJson, sampleKey,
  type PairSource, type SampleKey, type VerificationPair,
} from '../../core/index.js';
import { readFile } from 'node:fs/promises';
import { parsePairsFile } from '../../core/eval/pairs-file.js';
import { labelledPairGroup } from '../../core/eval/verification.js';
import type * as tf from '@tensorflow/tfjs';
import { BenchmarkImages } from '../../core/images/benchmark-images.js';
import { alignmentDescription, alignmentFields } from '../../core/images/face-aligner.js';

export const lfwPairsOptions = z.object({
  root: existingPath('folder').describe('image root: <root>/<name>/<name>_%04d.jpg'),
  pairsFile: existingPath('file').describe('pairs.txt (View 2) or pairsDevTest.txt / pairsDevTrain.txt (View 1)'),
  size: z.number().int().min(16).max(512).default(160).describe('decoded side in px'),
  centreCrop: z.number().int().positive().optional()
    .describe('centre crop in source px before resizing (deep-funneled 250 px LFW needs one; 110 suits the face-api teacher)'),
  limit: z.number().int().positive().optional().describe('use only the first N pairs (quick checks; folds then follow the contiguous rule)'),
  ...alignmentFields,
  // Defaults written into merged recipes since before the shared alignment options (kept: recipe hashes stay).
  align: alignmentFields.align.unwrap().default('none').describe(alignmentFields.align.description!),
  alignBox: alignmentFields.alignBox.unwrap().default(0.5).describe(alignmentFields.alignBox.description!),
  alignZoom: alignmentFields.alignZoom.unwrap().default(1).describe(alignmentFields.alignZoom.description!),
  decodeSize: alignmentFields.decodeSize.unwrap().default(250).describe(alignmentFields.decodeSize.description!),
  groups: existingPath('file').optional()
    .describe('identity → group label(s) JSON (annotations/lfw_race_dict.json): a pair is in group g when both identities carry exactly the single label g (strategy-specs 7.7)'),
});
type Options = z.infer<typeof lfwPairsOptions>;

class LfwPairs implements PairSource {
  readonly name = 'lfw-pairs';
  readonly protocol: string;
  private readonly images: BenchmarkImages;
  constructor(private readonly o: Options, private readonly root: string, private readonly file: string, cacheDir: string,
    log?: { warn(s: string): void }) {
    const crop = o.align !== 'none' ? alignmentDescription(o, o.size)
      : o.centreCrop ? `centre crop ${o.centreCrop} px, not landmark-aligned` : 'whole image, not landmark-aligned';
    // Deep-funneled LFW aligned here by landmarks is close to, not the same as, insightface's own aligned LFW.
    this.protocol = `LFW ${path.basename(file)} (${crop}${o.align === 'none' ? '; not comparable with 5-point-aligned 112 px numbers' : ''})`;
    this.images = new BenchmarkImages('lfw-pairs', root, o, o.size, cacheDir,
      (k) => decodeImage(path.join(root, k), { size: o.size, ...(o.centreCrop ? { centreCrop: o.centreCrop } : {}) }), log);
  }

  async init() {
    let parsed = await parsePairsFile(this.file);
    if (this.o.limit) parsed = parsed.slice(0, this.o.limit);
    const key = (p: { path: string }) => sampleKey(p.path);
    const labels = this.o.groups ? await readGroupLabels(path.resolve(this.o.groups)) : undefined;
    const pairs: VerificationPair[] = parsed.map((p) => {
      const group = labels ? labelledPairGroup(labels, p.a.name, p.b.name) : undefined;
      return { a: key(p.a), b: key(p.b), same: p.same, ...(this.o.limit ? {} : { fold: p.fold }), ...(group !== undefined ? { group } : {}) };
    });
    const images = [...new Set(pairs.flatMap((p) => [p.a, p.b]))];
    // Found now rather than at the first evaluation, which may come after hours of training.
    const missing = images.filter((k) => !existsSync(path.join(this.root, k)));
    if (missing.length > 0) throw new Error(`lfw-pairs: ${missing.length} image(s) that ${path.basename(this.file)} names are not under ${this.root}, e.g. ${missing.slice(0, 3).join(', ')}`);
    // Group labels change no embedding: they stay out of the list hash so embedding caches are shared.
    const listHash = hashJson({ file: path.basename(this.file), pairs: pairs.length, o: { ...this.o, root: undefined, pairsFile: undefined, groups: undefined }, first: pairs[0] });
    return {
      pairs, images, listHash,
      ...(this.o.groups ? { groups: { attribute: `${path.basename(this.o.groups)} labels (pairs whose two identities carry the same single label)`, mode: 'subset' as const } } : {}),
    };
  }

  load(keys: readonly SampleKey[]): Promise<tf.Tensor4D> { return this.images.load(keys); }

  dispose(): void { this.images.dispose(); }
}

/** identity → "label" or "label1,label2" (lfw_race_dict.json's shape). */
async function readGroupLabels(file: string): Promise<Record<string, string>> {
  let v: unknown;
  try { v = JSON.parse(await readFile(file, 'utf8')); } catch (e) { throw new Error(`lfw-pairs: groups file ${file} is not JSON: ${(e as Error).message}`); }
  if (v === null || typeof v !== 'object' || Array.isArray(v) || Object.values(v).some((x) => typeof x !== 'string')) {
    throw new Error(`lfw-pairs: groups file ${file} must map identity names to label strings`);
  }
  return v as Record<string, string>;
}

export const lfwPairs = contribution({
  slot: 'pairs',
  kind: 'lfw-pairs',
  summary: 'LFW pairs.txt protocol (View 1 or View 2) over an image folder',
  options: lfwPairsOptions,
  async create(o, ctx) { return new LfwPairs(o, ctx.resolvePath(o.root), ctx.resolvePath(o.pairsFile), ctx.cacheDir, ctx.log); },
});

export default contributionModule(lfwPairs);
