import path from 'node:path';
import { z } from 'zod';
import {
  contribution, contributionModule, decodeImage, existingPath, hashJson, sampleKey,
  type PairSource, type SampleKey, type VerificationPair,
} from '../../core/index.js';
import type * as tf from '@tensorflow/tfjs';
import { BenchmarkImages } from '../../core/images/benchmark-images.js';
import { alignmentDescription, alignmentFields, resolveAlignment } from '../../core/images/face-aligner.js';
import { filterByIdentityList, identityListField, listIdentityFolder } from '../image-folder/image-folder.js';
import { genuinePairs, impostorPairs, impostorSpace, interleave } from './pair-sampling.js';

export const folderPairsOptions = z.object({
  root: existingPath('folder').describe('folder of identity folders: root/<identity>/*.{jpg,png,pgm,webp}'),
  size: z.number().int().min(16).max(512).default(112).describe('decoded side in px'),
  centreCrop: z.number().int().positive().optional().describe('centre crop in source px before resizing'),
  maxGenuinePerIdentity: z.number().int().positive().optional()
    .describe('cap on genuine pairs per identity (a seeded choice among all of them); default all'),
  impostorRatio: z.number().gt(0).max(100).default(1).describe('impostor pairs per genuine pair (rounded)'),
  seed: z.number().int().min(0).default(1).describe('seed of the pair draw: fixed across runs so that runs compare'),
  identityList: identityListField,
  ...alignmentFields,
}).superRefine((o, ctx) => {
  if (o.centreCrop !== undefined && (o.align ?? 'none') !== 'none') ctx.addIssue({ code: 'custom', path: ['centreCrop'], message: 'centreCrop and align exclude each other (alignment crops to the face itself)' });
});
type Options = z.infer<typeof folderPairsOptions>;

class FolderPairs implements PairSource {
  readonly name = 'folder-pairs';
  readonly protocol: string;
  private readonly images: BenchmarkImages;

  constructor(private readonly o: Options, private readonly root: string, cacheDir: string, log?: { warn(s: string): void }) {
    const cap = o.maxGenuinePerIdentity ? `≤ ${o.maxGenuinePerIdentity} genuine pairs per identity` : 'all genuine pairs';
    const which = o.identityList ? `, identities ${o.identityList.use} in ${path.basename(o.identityList.file)}` : '';
    const crop = (o.align ?? 'none') !== 'none' ? `; ${alignmentDescription(o, o.size)}` : '';
    this.protocol = `identity folder ${path.basename(root)}${which}: ${cap}, ${o.impostorRatio}× seeded impostor pairs (seed ${o.seed}), `
      + `10 contiguous folds over interleaved pairs (folds are not identity-disjoint; not a published protocol)${crop}`;
    this.images = new BenchmarkImages('folder-pairs', root, o, o.size, cacheDir,
      (k) => decodeImage(path.join(root, k), { size: o.size, ...(o.centreCrop ? { centreCrop: o.centreCrop } : {}) }), log);
  }

  async init() {
    const entries = await filterByIdentityList(await listIdentityFolder(this.root), this.o.identityList);
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
    const aligned = (this.o.align ?? 'none') !== 'none' ? { align: resolveAlignment(this.o) } : {};
    return { pairs, images, listHash: hashJson({ pairs: pairs.map((p) => [p.a, p.b, p.same]), size: this.o.size, centreCrop: this.o.centreCrop, ...aligned }) };
  }

  load(keys: readonly SampleKey[]): Promise<tf.Tensor4D> { return this.images.load(keys); }

  dispose(): void { this.images.dispose(); }
}

export const folderPairs = contribution({
  slot: 'pairs',
  kind: 'folder-pairs',
  summary: 'verification pairs from any identity folder: all genuine pairs (optionally capped), seeded impostor pairs',
  options: folderPairsOptions,
  async create(o, ctx) { return new FolderPairs(o, ctx.resolvePath(o.root), ctx.cacheDir, ctx.log); },
});

export default contributionModule(folderPairs);
