import path from 'node:path';
import { z } from 'zod';
import {
  contribution, contributionModule, decodeImage, decodeMany, existingPath, hashJson, sampleKey, stackImages,
  type PairSource, type SampleKey, type VerificationPair,
} from '../../core/index.js';
import { parsePairsFile } from '../../core/eval/pairs-file.js';

export const lfwPairsOptions = z.object({
  root: existingPath('folder').describe('image root: <root>/<name>/<name>_%04d.jpg'),
  pairsFile: existingPath('file').describe('pairs.txt (View 2) or pairsDevTest.txt / pairsDevTrain.txt (View 1)'),
  size: z.number().int().min(16).max(512).default(160).describe('decoded side in px'),
  centreCrop: z.number().int().positive().optional()
    .describe('centre crop in source px before resizing (deep-funneled 250 px LFW needs one; 110 suits the face-api teacher)'),
  limit: z.number().int().positive().optional().describe('use only the first N pairs (quick checks; folds then follow the contiguous rule)'),
});
type Options = z.infer<typeof lfwPairsOptions>;

class LfwPairs implements PairSource {
  readonly name = 'lfw-pairs';
  readonly protocol: string;
  constructor(private readonly o: Options, private readonly root: string, private readonly file: string) {
    const crop = o.centreCrop ? `centre crop ${o.centreCrop} px, not landmark-aligned` : 'whole image, not landmark-aligned';
    this.protocol = `LFW ${path.basename(file)} (${crop}; not comparable with 5-point-aligned 112 px numbers)`;
  }

  async init() {
    let parsed = await parsePairsFile(this.file);
    if (this.o.limit) parsed = parsed.slice(0, this.o.limit);
    const key = (p: { path: string }) => sampleKey(p.path);
    const pairs: VerificationPair[] = parsed.map((p) => ({ a: key(p.a), b: key(p.b), same: p.same, ...(this.o.limit ? {} : { fold: p.fold }) }));
    const images = [...new Set(pairs.flatMap((p) => [p.a, p.b]))];
    return { pairs, images, listHash: hashJson({ file: path.basename(this.file), pairs: pairs.length, o: { ...this.o, root: undefined, pairsFile: undefined }, first: pairs[0] }) };
  }

  async load(keys: readonly SampleKey[]) {
    const decoded = await decodeMany(keys, (k) => decodeImage(path.join(this.root, k), {
      size: this.o.size, ...(this.o.centreCrop ? { centreCrop: this.o.centreCrop } : {}),
    }));
    const bad = decoded.findIndex((d) => d instanceof Error);
    // A benchmark with a missing image is not the benchmark: fail loudly, naming the file.
    if (bad >= 0) throw new Error(`lfw-pairs: cannot read ${path.join(this.root, keys[bad]!)}: ${(decoded[bad] as Error).message}`);
    return stackImages(decoded as Exclude<(typeof decoded)[number], Error>[]);
  }

  dispose(): void {}
}

export const lfwPairs = contribution({
  slot: 'pairs',
  kind: 'lfw-pairs',
  summary: 'LFW pairs.txt protocol (View 1 or View 2) over an image folder',
  options: lfwPairsOptions,
  async create(o, ctx) { return new LfwPairs(o, ctx.resolvePath(o.root), ctx.resolvePath(o.pairsFile)); },
});

export default contributionModule(lfwPairs);
