import path from 'node:path';
import { z } from 'zod';
import {
  contribution, contributionModule, decodeImage, decodeMany, existingPath, hashJson, sampleKey, stackImages,
  type PairSource, type RgbImage, type SampleKey, type VerificationPair,
} from '../../core/index.js';
import { listIdentityFolder } from '../image-folder/image-folder.js';
import { genuinePairs, impostorPairs, impostorSpace, interleave } from './pair-sampling.js';

export const folderPairsOptions = z.object({
  root: existingPath('folder').describe('folder of identity folders: root/<identity>/*.{jpg,png,pgm,webp}'),
  size: z.number().int().min(16).max(512).default(112).describe('decoded side in px'),
  centreCrop: z.number().int().positive().optional().describe('centre crop in source px before resizing'),
  maxGenuinePerIdentity: z.number().int().positive().optional()
    .describe('cap on genuine pairs per identity (a seeded choice among all of them); default all'),
  impostorRatio: z.number().gt(0).max(100).default(1).describe('impostor pairs per genuine pair (rounded)'),
  seed: z.number().int().min(0).default(1).describe('seed of the pair draw: fixed across runs so that runs compare'),
});
type Options = z.infer<typeof folderPairsOptions>;

class FolderPairs implements PairSource {
  readonly name = 'folder-pairs';
  readonly protocol: string;
  constructor(private readonly o: Options, private readonly root: string) {
    const cap = o.maxGenuinePerIdentity ? `≤ ${o.maxGenuinePerIdentity} genuine pairs per identity` : 'all genuine pairs';
    this.protocol = `identity folder ${path.basename(root)}: ${cap}, ${o.impostorRatio}× seeded impostor pairs (seed ${o.seed}), `
      + `10 contiguous folds over interleaved pairs (folds are not identity-disjoint; not a published protocol)`;
  }

  async init() {
    const entries = await listIdentityFolder(this.root);
    const groups = new Map<string, number[]>();
    entries.forEach((e, i) => { if (!groups.has(e.identity)) groups.set(e.identity, []); groups.get(e.identity)!.push(i); });
    const lists = [...groups.values()];
    const genuine = genuinePairs(lists, this.o.seed, this.o.maxGenuinePerIdentity);
    if (genuine.length === 0) throw new Error(`folder-pairs: no identity under ${this.root} has two images, so there are no genuine pairs`);
    const want = Math.round(this.o.impostorRatio * genuine.length);
    const space = impostorSpace(lists);
    if (want > space) {
      throw new Error(`folder-pairs: impostorRatio ${this.o.impostorRatio} asks for ${want} impostor pairs but ${this.root} (${entries.length} images, ${lists.length} identities) has only ${space}`);
    }
    const impostor = impostorPairs(lists, want, this.o.seed);
    // Folds stay undefined: the contiguous 10-fold rule applies over this interleaved order.
    const key = (i: number): SampleKey => sampleKey(entries[i]!.file);
    const pairs: VerificationPair[] = interleave(genuine, impostor).map((p) => ({ a: key(p.a), b: key(p.b), same: p.same }));
    const images = [...new Set(pairs.flatMap((p) => [p.a, p.b]))];
    return { pairs, images, listHash: hashJson({ pairs: pairs.map((p) => [p.a, p.b, p.same]), size: this.o.size, centreCrop: this.o.centreCrop }) };
  }

  async load(keys: readonly SampleKey[]) {
    const decoded = await decodeMany(keys, (k) => decodeImage(path.join(this.root, k), {
      size: this.o.size, ...(this.o.centreCrop ? { centreCrop: this.o.centreCrop } : {}),
    }));
    const bad = decoded.findIndex((d) => d instanceof Error);
    // A benchmark with a missing image is not the benchmark: fail loudly, naming the file.
    if (bad >= 0) throw new Error(`folder-pairs: cannot read ${path.join(this.root, keys[bad]!)}: ${(decoded[bad] as Error).message}`);
    return stackImages(decoded as RgbImage[]);
  }

  dispose(): void { /* nothing held */ }
}

export const folderPairs = contribution({
  slot: 'pairs',
  kind: 'folder-pairs',
  summary: 'verification pairs from any identity folder: all genuine pairs (optionally capped), seeded impostor pairs',
  options: folderPairsOptions,
  async create(o, ctx) { return new FolderPairs(o, ctx.resolvePath(o.root)); },
});

export default contributionModule(folderPairs);
