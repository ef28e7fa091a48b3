import { readdir } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import {
  contribution, contributionModule, decodeImage, decodeMany, EpochSampler, existingPath, GeneralPlusPkSampler, hashJson, PkSampler, sampleKey, stackImages,
  type Batch, type BatchSampler, type DataSource, type DataSourceInfo, type JsonValue, type RgbImage,
} from '../../core/index.js';

const EXTENSIONS = new Set(['.jpg', '.jpeg', '.png', '.pgm', '.webp']);

export const imageFolderOptions = z.object({
  root: existingPath('folder').describe('folder of identity folders: root/<identity>/*.{jpg,png,pgm}'),
  size: z.number().int().min(8).max(512).default(112).describe('decoded side in px (models resize further)'),
  centreCrop: z.number().int().positive().optional().describe('centre crop in source px before resizing'),
  limit: z.number().int().positive().optional().describe('use at most this many images (first by sorted path)'),
  minPerIdentity: z.number().int().min(1).default(1).describe('drop identities with fewer images'),
  sampler: z.discriminatedUnion('kind', [
    z.object({ kind: z.literal('uniform') }).describe('each image once per epoch, seeded shuffle'),
    z.object({
      kind: z.literal('pk'),
      identities: z.number().int().min(1).default(8).describe('P: identities per batch'),
      perIdentity: z.number().int().min(1).default(4).describe('K: images per identity (repeated when an identity has fewer)'),
    }).describe('identity-balanced P×K batches; batchSize must be P·K'),
    z.object({
      kind: z.literal('general-plus-pk'),
      identities: z.number().int().min(1).default(8),
      perIdentity: z.number().int().min(1).default(4),
    }).describe('EKD batch: batchSize − P·K uniform samples first, then P×K balanced'),
  ]).default({ kind: 'uniform' }).describe('how batches are drawn'),
});
type Options = z.infer<typeof imageFolderOptions>;

/** Lists root/<identity>/<file> in sorted order. */
export async function listIdentityFolder(root: string): Promise<{ file: string; identity: string }[]> {
  const ids = (await readdir(root, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name).sort();
  const out: { file: string; identity: string }[] = [];
  for (const id of ids) {
    const files = (await readdir(path.join(root, id))).filter((f) => EXTENSIONS.has(path.extname(f).toLowerCase())).sort();
    for (const f of files) out.push({ file: path.join(id, f), identity: id });
  }
  return out;
}

function makeSampler(o: Options['sampler'], labels: readonly number[], seed: number): BatchSampler {
  switch (o.kind) {
    case 'uniform': return new EpochSampler(labels.length, seed);
    case 'pk': return new PkSampler(labels, o.identities, o.perIdentity, seed);
    case 'general-plus-pk': return new GeneralPlusPkSampler(labels, o.identities, o.perIdentity, seed);
  }
}

class ImageFolderSource implements DataSource {
  private images: RgbImage[] = [];
  private labels: number[] = [];
  private keys: string[] = [];
  private sampler?: BatchSampler;

  constructor(private readonly o: Options, private readonly root: string, private readonly seed: number) {}

  async init(): Promise<DataSourceInfo> {
    let entries = await listIdentityFolder(this.root);
    const counts = new Map<string, number>();
    for (const e of entries) counts.set(e.identity, (counts.get(e.identity) ?? 0) + 1);
    entries = entries.filter((e) => counts.get(e.identity)! >= this.o.minPerIdentity);
    if (this.o.limit) entries = entries.slice(0, this.o.limit);
    const decoded = await decodeMany(entries, (e) => decodeImage(path.join(this.root, e.file), {
      size: this.o.size, ...(this.o.centreCrop ? { centreCrop: this.o.centreCrop } : {}),
    }));
    const skipped: { file: string; reason: string }[] = [];
    const idIndex = new Map<string, number>();
    decoded.forEach((d, i) => {
      const e = entries[i]!;
      if (d instanceof Error) { skipped.push({ file: e.file, reason: d.message.split('\n')[0]! }); return; }
      if (!idIndex.has(e.identity)) idIndex.set(e.identity, idIndex.size);
      this.images.push(d); this.labels.push(idIndex.get(e.identity)!); this.keys.push(`image-folder:${e.file}`);
    });
    if (this.images.length === 0) throw new Error(`image-folder: no readable images under ${this.root} (${skipped.length} skipped)`);
    this.sampler = makeSampler(this.o.sampler, this.labels, this.seed);
    return { name: `image-folder ${this.root}`, images: this.images.length, identities: idIndex.size, skipped, listHash: hashJson({ keys: this.keys, o: this.o }) };
  }

  async next(batchSize: number): Promise<Batch> {
    const idx = this.sampler!.take(batchSize);
    return {
      images: stackImages(idx.map((i) => this.images[i]!)),
      keys: idx.map((i) => sampleKey(this.keys[i]!)),
      labels: Int32Array.from(idx.map((i) => this.labels[i]!)),
      cacheable: true,
    };
  }

  state(): JsonValue { return this.sampler!.state(); }
  restore(s: JsonValue): void { this.sampler!.restore(s); }
  dispose(): void { this.images = []; void tf; }
}

export const imageFolder = contribution({
  slot: 'data',
  kind: 'image-folder',
  summary: 'identity folders of face images (root/<identity>/*.jpg); unreadable files are skipped and reported',
  options: imageFolderOptions,
  async create(o, ctx) { return new ImageFolderSource(o, ctx.resolvePath(o.root), ctx.seed); },
});

export default contributionModule(imageFolder);
