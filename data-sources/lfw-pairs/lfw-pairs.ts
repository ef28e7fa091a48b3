import path from 'node:path';
import { z } from 'zod';
import {
  contribution, contributionModule, decodeImage, decodeMany, existingPath, hashJson, sampleKey, stackImages,
  type PairSource, type SampleKey, type VerificationPair,
} from '../../core/index.js';
import { readFile } from 'node:fs/promises';
import { parsePairsFile } from '../../core/eval/pairs-file.js';
import { labelledPairGroup } from '../../core/eval/verification.js';
import { alignCentred, FaceLandmarker } from '../../core/images/landmarks.js';

export const lfwPairsOptions = z.object({
  root: existingPath('folder').describe('image root: <root>/<name>/<name>_%04d.jpg'),
  pairsFile: existingPath('file').describe('pairs.txt (View 2) or pairsDevTest.txt / pairsDevTrain.txt (View 1)'),
  size: z.number().int().min(16).max(512).default(160).describe('decoded side in px'),
  centreCrop: z.number().int().positive().optional()
    .describe('centre crop in source px before resizing (deep-funneled 250 px LFW needs one; 110 suits the face-api teacher)'),
  limit: z.number().int().positive().optional().describe('use only the first N pairs (quick checks; folds then follow the contiguous rule)'),
  align: z.enum(['none', 'five-point']).default('none')
    .describe('five-point: face-api 68-point landmarks in a centred box → similarity alignment to the ArcFace template (strategy-specs 7.9)'),
  alignBox: z.number().gt(0).max(1).default(0.5).describe('five-point: side of the centred search box, as a fraction of the image'),
  alignZoom: z.number().gt(0).max(2).default(1).describe('five-point: template scale about the centre (< 1 keeps more context)'),
  decodeSize: z.number().int().positive().default(250).describe('five-point: side the source is decoded at before alignment'),
  groups: existingPath('file').optional()
    .describe('identity → group label(s) JSON (annotations/lfw_race_dict.json): a pair is in group g when both identities carry exactly the single label g (strategy-specs 7.7)'),
});
type Options = z.infer<typeof lfwPairsOptions>;

class LfwPairs implements PairSource {
  readonly name = 'lfw-pairs';
  readonly protocol: string;
  private landmarker?: Promise<FaceLandmarker>;
  constructor(private readonly o: Options, private readonly root: string, private readonly file: string) {
    const crop = o.align === 'five-point'
      ? `5-point aligned from face-api landmarks, ${o.size} px, zoom ${o.alignZoom}`
      : o.centreCrop ? `centre crop ${o.centreCrop} px, not landmark-aligned` : 'whole image, not landmark-aligned';
    this.protocol = `LFW ${path.basename(file)} (${crop}; not comparable with 5-point-aligned 112 px numbers)`;
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
    // Group labels change no embedding: they stay out of the list hash so embedding caches are shared.
    const listHash = hashJson({ file: path.basename(this.file), pairs: pairs.length, o: { ...this.o, root: undefined, pairsFile: undefined, groups: undefined }, first: pairs[0] });
    return {
      pairs, images, listHash,
      ...(this.o.groups ? { groups: { attribute: `${path.basename(this.o.groups)} labels (pairs whose two identities carry the same single label)`, mode: 'subset' as const } } : {}),
    };
  }

  async load(keys: readonly SampleKey[]) {
    const five = this.o.align === 'five-point';
    const decoded = await decodeMany(keys, (k) => decodeImage(path.join(this.root, k), five ? { size: this.o.decodeSize } : {
      size: this.o.size, ...(this.o.centreCrop ? { centreCrop: this.o.centreCrop } : {}),
    }));
    const bad = decoded.findIndex((d) => d instanceof Error);
    // A benchmark with a missing image is not the benchmark: fail loudly, naming the file.
    if (bad >= 0) throw new Error(`lfw-pairs: cannot read ${path.join(this.root, keys[bad]!)}: ${(decoded[bad] as Error).message}`);
    const stacked = stackImages(decoded as Exclude<(typeof decoded)[number], Error>[]);
    if (!five) return stacked;
    this.landmarker ??= FaceLandmarker.load();
    try {
      return await alignCentred(await this.landmarker, stacked, { box: this.o.alignBox, size: this.o.size, zoom: this.o.alignZoom });
    } finally {
      stacked.dispose();
    }
  }

  dispose(): void { void this.landmarker?.then((l) => l.dispose()); }
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
  async create(o, ctx) { return new LfwPairs(o, ctx.resolvePath(o.root), ctx.resolvePath(o.pairsFile)); },
});

export default contributionModule(lfwPairs);
