import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import {
  contribution, contributionModule, decodeImage, decodeMany, EpochSampler, existingPath, GeneralPlusPkSampler, hashJson, holdoutField, inHoldoutPart, PkSampler, sampleKey, stackImages,
  type Batch, type BatchSampler, type DataSource, type DataSourceInfo, type JsonValue, type Logger, type RgbImage,
} from '../../core/index.js';
import { AlignedFaceCache } from '../../core/images/aligned-cache.js';
import { alignmentDescription, alignmentFields, decodeLetterboxed, FaceAligner, resolveAlignment } from '../../core/images/face-aligner.js';

const EXTENSIONS = new Set(['.jpg', '.jpeg', '.png', '.pgm', '.webp']);

/** Identities named in a file, kept or left out: shared by training folders and folder-pairs, so one list splits both. */
export const identityListField = z.strictObject({
  file: existingPath('file').describe('text file: one identity folder name per line (# comments)'),
  use: z.enum(['listed', 'unlisted']).describe('listed: only those identities; unlisted: every other one'),
}).optional().describe('identities named in a file: keep only them, or leave them out (e.g. identities held out for a held-out-identities evaluation)');

/** The entries whose identity the list keeps (all where there is no list). */
export async function filterByIdentityList<E extends { identity: string | null }>(entries: readonly E[], o: z.infer<typeof identityListField>): Promise<E[]> {
  if (!o) return [...entries];
  const listed = await readIdentityList(path.resolve(o.file));
  const keep = o.use === 'listed';
  return entries.filter((e) => e.identity !== null && listed.has(e.identity) === keep);
}

export const imageFolderOptions = z.object({
  root: existingPath('folder').describe('folder of identity folders: root/<identity>/*.{jpg,png,pgm} (layout: flat: root/*.jpg)'),
  layout: z.enum(['identity-folders', 'flat']).optional()
    .describe('identity-folders (default): one folder per identity (labels); flat: the images directly in root, unlabelled (feature distillation only)'),
  ...alignmentFields,
  size: z.number().int().min(8).max(512).default(112).describe('decoded side in px (models resize further)'),
  centreCrop: z.number().int().positive().optional().describe('centre crop in source px before resizing'),
  limit: z.number().int().positive().optional().describe('use at most this many images (first by sorted path)'),
  holdout: holdoutField,
  identityList: identityListField,
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
}).superRefine((o, ctx) => {
  // Refused with the recipe, before anything is written, rather than when the source initialises.
  if (o.centreCrop !== undefined && (o.align ?? 'none') !== 'none') {
    ctx.addIssue({ code: 'custom', path: ['centreCrop'], message: 'centreCrop and align exclude each other (alignment crops to the face itself)' });
  }
  if (o.layout === 'flat' && o.identityList) {
    ctx.addIssue({ code: 'custom', path: ['identityList'], message: 'identityList names identity folders, but layout: flat has none' });
  }
  if (o.layout === 'flat' && o.sampler.kind !== 'uniform') {
    ctx.addIssue({ code: 'custom', path: ['sampler'], message: `sampler ${o.sampler.kind} draws identities, but layout: flat has no identity labels (use layout: identity-folders)` });
  }
});
type Options = z.infer<typeof imageFolderOptions>;

/** Identity names, one per line; blank lines and # comments ignored. */
export async function readIdentityList(file: string): Promise<Set<string>> {
  return new Set((await readFile(file, 'utf8')).split(/\r?\n/).map((l) => l.replace(/#.*/, '').trim()).filter((l) => l !== ''));
}

/** True for a folder, or a symbolic link to one (data sets are often assembled from links). */
async function isFolder(dir: string, d: { name: string; isDirectory(): boolean; isSymbolicLink(): boolean }): Promise<boolean> {
  if (d.isDirectory()) return true;
  if (!d.isSymbolicLink()) return false;
  try { return (await stat(path.join(dir, d.name))).isDirectory(); } catch { return false; }
}

/** Lists root/<file> (images directly in root) in sorted order. */
export async function listFlatFolder(root: string): Promise<{ file: string; identity: null }[]> {
  const files = (await readdir(root)).filter((f) => EXTENSIONS.has(path.extname(f).toLowerCase())).sort();
  return files.map((file) => ({ file, identity: null }));
}

/** Lists root/<identity>/<file> in sorted order. */
export async function listIdentityFolder(root: string): Promise<{ file: string; identity: string }[]> {
  const dirents = await readdir(root, { withFileTypes: true });
  const ids = (await Promise.all(dirents.map(async (d) => (await isFolder(root, d)) ? d.name : null))).filter((d): d is string => d !== null).sort();
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

  constructor(private readonly o: Options, private readonly root: string, private readonly seed: number, private readonly cacheDir: string, private readonly log?: Logger) {}

  async init(): Promise<DataSourceInfo> {
    const flat = this.o.layout === 'flat';
    let entries: { file: string; identity: string | null }[] = flat ? await listFlatFolder(this.root) : await listIdentityFolder(this.root);
    if (this.o.holdout) entries = entries.filter((e) => inHoldoutPart(e.file, this.o.holdout));
    entries = await filterByIdentityList(entries, this.o.identityList);
    const counts = new Map<string | null, number>();
    for (const e of entries) counts.set(e.identity, (counts.get(e.identity) ?? 0) + 1);
    if (!flat) entries = entries.filter((e) => counts.get(e.identity)! >= this.o.minPerIdentity);
    if (this.o.limit) entries = entries.slice(0, this.o.limit);
    const decoded = (this.o.align ?? 'none') === 'none'
      ? await decodeMany(entries, (e) => decodeImage(path.join(this.root, e.file), { size: this.o.size, ...(this.o.centreCrop ? { centreCrop: this.o.centreCrop } : {}) }))
      : await this.alignedFaces(entries.map((e) => e.file));
    const skipped: { file: string; reason: string }[] = [];
    const idIndex = new Map<string, number>();
    decoded.forEach((d, i) => {
      const e = entries[i]!;
      if (d instanceof Error) { skipped.push({ file: e.file, reason: d.message.split('\n')[0]! }); return; }
      if (e.identity !== null && !idIndex.has(e.identity)) idIndex.set(e.identity, idIndex.size);
      this.images.push(d); this.labels.push(e.identity === null ? -1 : idIndex.get(e.identity)!); this.keys.push(`image-folder:${e.file}`);
    });
    if (this.images.length === 0) {
      const why = skipped.slice(0, 3).map((k) => `${k.file}: ${k.reason}`).join('; ');
      throw new Error(`image-folder: no usable images under ${this.root} (${skipped.length} skipped${why ? `, e.g. ${why}` : ''})`);
    }
    this.sampler = makeSampler(this.o.sampler, this.labels, this.seed);
    return {
      name: `image-folder ${this.root}${(this.o.align ?? 'none') !== 'none' ? ` (${alignmentDescription(this.o, this.o.size)})` : ''}`,
      images: this.images.length, ...(flat ? {} : { identities: idIndex.size }), skipped, listHash: hashJson({ keys: this.keys, o: this.o }),
    };
  }

  /** The aligned faces of the files: from the aligned-faces cache when it has them, else decoded, aligned and saved there. */
  private async alignedFaces(files: readonly string[]): Promise<(RgbImage | Error)[]> {
    const fileKeys = await Promise.all(files.map((f) => FaceAligner.fileKey(path.join(this.root, f)).catch(() => `${f}|unreadable`)));
    const cache = new AlignedFaceCache(this.cacheDir, { root: this.root, fileKeys, options: resolveAlignment(this.o), size: this.o.size });
    const hit = await cache.load(files.length, this.o.size);
    if (hit) {
      this.log?.info(`image-folder: ${files.length} aligned faces read from the cache (${path.relative(process.cwd(), cache.file)})`);
      return hit;
    }
    const faces = await this.decodeAligned(files);
    await cache.save(faces, this.o.size);
    return faces;
  }

  /**
   * Decodes and aligns every file once, in chunks (the decoded sources are large; only the aligned faces are kept).
   * A file that cannot be read or whose face cannot be aligned comes back as an Error, like an unreadable one.
   */
  private async decodeAligned(files: readonly string[]): Promise<(RgbImage | Error)[]> {
    const aligner = new FaceAligner(this.o, this.o.size, this.cacheDir, this.root);
    await aligner.init();
    const out: (RgbImage | Error)[] = new Array(files.length);
    const CHUNK = 64, t0 = performance.now();
    let lastLog = t0;
    try {
      for (let start = 0; start < files.length; start += CHUNK) {
        const chunk = files.slice(start, start + CHUNK);
        const decoded = await decodeMany(chunk, (f) => decodeLetterboxed(path.join(this.root, f), aligner.o.decodeSize));
        const ok = decoded.flatMap((d, j) => (d instanceof Error ? (out[start + j] = d, []) : [j]));
        if (ok.length === 0) continue;
        const stacked = stackImages(ok.map((j) => decoded[j] as RgbImage));
        const keys = await Promise.all(ok.map((j) => FaceAligner.fileKey(path.join(this.root, chunk[j]!))));
        let r;
        try { r = await aligner.align(stacked, keys, 'skip'); } finally { stacked.dispose(); }
        const pixels = tf.tidy(() => tf.clipByValue(tf.round(r.images), 0, 255).cast('int32'));
        const data = Uint8Array.from(await pixels.data());
        tf.dispose([pixels, r.images]);
        const side = this.o.size * this.o.size * 3;
        r.kept.forEach((k, m) => { out[start + ok[k]!] = { data: data.subarray(m * side, (m + 1) * side), size: this.o.size }; });
        for (const f of r.failed) out[start + ok[f.index]!] = new Error(f.reason);
        await aligner.save(4096);
        if (performance.now() - lastLog > 10_000) {
          lastLog = performance.now();
          this.log?.info(`image-folder: aligned ${Math.min(start + CHUNK, files.length)}/${files.length} images (${aligner.landmarksComputed} landmark searches, the rest cached)`);
        }
      }
      await aligner.save();
    } finally {
      aligner.dispose();
    }
    return out;
  }

  async next(batchSize: number): Promise<Batch> {
    const idx = this.sampler!.take(batchSize);
    return {
      images: stackImages(idx.map((i) => this.images[i]!)),
      keys: idx.map((i) => sampleKey(this.keys[i]!)),
      ...(this.o.layout === 'flat' ? {} : { labels: Int32Array.from(idx.map((i) => this.labels[i]!)) }),
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
  summary: 'identity folders (or a flat folder) of face images, optionally 5-point or dlib-chip aligned; unreadable or unalignable files are skipped and reported',
  options: imageFolderOptions,
  async create(o, ctx) { return new ImageFolderSource(o, ctx.resolvePath(o.root), ctx.seed, ctx.cacheDir, ctx.log); },
});

export default contributionModule(imageFolder);
