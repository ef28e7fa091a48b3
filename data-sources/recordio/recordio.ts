import { createHash } from 'node:crypto';
import path from 'node:path';
import { z } from 'zod';
import {
  contribution, contributionModule, decodeImage, EpochSampler, existingPath, hashJson, Rng, sampleKey, stackImages,
  type Batch, type DataSource, type DataSourceInfo, type JsonValue, type Logger, type RgbImage, type RngState,
} from '../../core/index.js';
import { classOf, exactIndex, parseIrHeader } from './irheader.js';
import { readPackLayout, type PackLayout } from './pack-layout.js';
import { readIdx, RecordFile, type RecordIndex } from './recordio-file.js';

export const recordioOptions = z.object({
  root: existingPath('folder').describe('folder holding train.rec, train.idx and property (an insightface training pack, e.g. faces_emore)'),
  size: z.number().int().min(8).max(512).default(112).describe('decoded side in px (packs hold 112 px aligned crops; other sizes resize)'),
  limit: z.number().int().positive().optional().describe('use only the first N image keys (ascending)'),
  flip: z.boolean().default(true).describe('random horizontal flip, p = 0.5, seeded (the flip is part of the sample key)'),
  cacheImages: z.number().int().min(0).default(512).describe('decoded images kept in memory (LRU); 512 at 112 px ≈ 19 MB'),
});
type Options = z.infer<typeof recordioOptions>;

/** Distinct stream for the flips so the sampler's order does not depend on the flip option. */
const FLIP_STREAM = 0x9e3779b1;

type Sample = { readonly ok: true; readonly image: RgbImage; readonly label: number } | { readonly ok: false; readonly reason: string };

function flipped(im: RgbImage): RgbImage {
  const s = im.size, out = new Uint8Array(im.data.length);
  for (let y = 0; y < s; y++) {
    for (let x = 0; x < s; x++) {
      const src = (y * s + x) * 3, dst = (y * s + (s - 1 - x)) * 3;
      out[dst] = im.data[src]!; out[dst + 1] = im.data[src + 1]!; out[dst + 2] = im.data[src + 2]!;
    }
  }
  return { data: out, size: s };
}

class RecordioSource implements DataSource {
  private rec?: RecordFile;
  private index?: RecordIndex;
  private layout?: PackLayout;
  private keys: ArrayLike<number> = [];
  private sampler?: EpochSampler;
  private readonly flipRng: Rng;
  private readonly cache = new Map<number, RgbImage>();
  /** Image keys whose payload could not be used: skipped from then on, listed in the run's report. */
  private readonly bad = new Map<number, { file: string; reason: string }>();
  private readonly skipped: { file: string; reason: string }[] = [];

  constructor(private readonly o: Options, private readonly root: string, private readonly seed: number, private readonly log: Logger) {
    this.flipRng = new Rng((seed ^ FLIP_STREAM) >>> 0);
  }

  async init(): Promise<DataSourceInfo> {
    const { index, bytes } = await readIdx(path.join(this.root, 'train.idx'));
    this.index = index;
    this.rec = await RecordFile.open(path.join(this.root, 'train.rec'));
    try {
      this.layout = await readPackLayout(this.root, this.rec, index, this.log);
    } catch (e) {
      this.dispose();
      throw e;
    }
    const all = this.layout.imageKeys;
    this.keys = this.o.limit !== undefined && this.o.limit < all.length ? all.subarray(0, this.o.limit) : all;
    if (this.keys.length === 0) throw new Error(`recordio: ${this.root} holds no image records`);
    this.sampler = new EpochSampler(this.keys.length, this.seed);
    const idxHash = createHash('sha256').update(bytes).digest('hex');
    return {
      name: `recordio ${this.root} (${this.layout.kind === 'header' ? 'insightface header record' : 'every key an image'})`,
      images: this.keys.length,
      // The label space: class ids stay those of the pack, also under `limit`.
      identities: this.layout.classes,
      // Filled as records turn out unreadable: reading is lazy, so the list grows during the run.
      skipped: this.skipped,
      listHash: hashJson({ idx: idxHash, recBytes: this.rec.size, classes: this.layout.classes, size: this.o.size, images: this.keys.length }),
    };
  }

  /**
   * Class of every image (index order of this source) from the identity records, for samplers that
   * need labels up front (P×K); undefined for packs without a header record.
   */
  imageClasses(): Int32Array | undefined {
    const c = this.layout?.classOfKey;
    return c ? Int32Array.from({ length: this.keys.length }, (_, i) => c[this.keys[i]!]!) : undefined;
  }

  private skip(key: number, reason: string): void {
    if (this.bad.has(key)) return;
    const entry = { file: `train.rec key ${key} (byte ${this.index!.offsetOf(key)})`, reason };
    this.bad.set(key, entry);
    this.skipped.push(entry);
  }

  private async sample(key: number): Promise<Sample> {
    const known = this.bad.get(key);
    if (known) return { ok: false, reason: known.reason };
    const off = this.index!.offsetOf(key)!;
    // Framing errors (bad magic, truncation) mean a broken file or index: they propagate.
    const payload = await this.rec!.read(off);
    try {
      const h = parseIrHeader(payload, 'payload');
      const label = classOf(h);
      const why = exactIndex(label) ?? (label >= this.layout!.classes ? `${label} is not below num_classes ${this.layout!.classes}` : undefined);
      if (why) return { ok: false, reason: `label ${why}` };
      const fromIdentity = this.layout!.classOfKey?.[key];
      if (fromIdentity !== undefined && fromIdentity !== -1 && fromIdentity !== label) {
        return { ok: false, reason: `label ${label} but the identity records put key ${key} in class ${fromIdentity}` };
      }
      if (h.image.length === 0) return { ok: false, reason: 'no image bytes after the IRHeader' };
      let image = this.cache.get(key);
      if (image) {
        this.cache.delete(key); // refresh its LRU position
      } else {
        image = await decodeImage(Buffer.from(h.image.buffer, h.image.byteOffset, h.image.byteLength), { size: this.o.size });
      }
      if (this.o.cacheImages > 0) {
        this.cache.set(key, image);
        if (this.cache.size > this.o.cacheImages) this.cache.delete(this.cache.keys().next().value!);
      }
      return { ok: true, image, label };
    } catch (e) {
      return { ok: false, reason: (e as Error).message.split('\n')[0]! };
    }
  }

  async next(batchSize: number): Promise<Batch> {
    const images: RgbImage[] = [], keys: ReturnType<typeof sampleKey>[] = [], labels: number[] = [];
    const unflipped: (ReturnType<typeof sampleKey> | null)[] = [];
    let failures = 0;
    while (images.length < batchSize) {
      const idx = this.sampler!.take(batchSize - images.length);
      // Read in parallel (sharp decodes on libuv's pool); consume in sampler order so the stream is deterministic.
      const results = await Promise.all(idx.map((i) => this.sample(this.keys[i]!)));
      results.forEach((r, j) => {
        const key = this.keys[idx[j]!]!;
        if (!r.ok) { this.skip(key, r.reason); failures++; return; }
        const flip = this.o.flip && this.flipRng.next() < 0.5;
        images.push(flip ? flipped(r.image) : r.image);
        keys.push(sampleKey(`recordio:${key}${flip ? ':flip' : ''}`));
        unflipped.push(flip ? sampleKey(`recordio:${key}`) : null);
        labels.push(r.label);
      });
      if (this.bad.size >= this.keys.length) throw new Error(`recordio: ${this.root}: none of the ${this.keys.length} image records is readable (see the skipped list)`);
      if (failures > 64 + 4 * batchSize) throw new Error(`recordio: ${this.root}: ${failures} unreadable records while filling one batch (last: ${this.skipped.at(-1)?.file}: ${this.skipped.at(-1)?.reason})`);
    }
    return { images: stackImages(images), keys, labels: Int32Array.from(labels), cacheable: true, ...(unflipped.some((k) => k !== null) ? { unflipped } : {}) };
  }

  state(): JsonValue { return { sampler: this.sampler!.state(), flip: [...this.flipRng.state()] }; }

  restore(s: JsonValue): void {
    const o = s as { sampler: JsonValue; flip: number[] };
    this.sampler!.restore(o.sampler);
    this.flipRng.restore(o.flip as unknown as RngState);
  }

  dispose(): void {
    this.cache.clear();
    void this.rec?.close().catch(() => undefined);
    this.rec = undefined;
  }
}

export const recordio = contribution({
  slot: 'data',
  kind: 'recordio',
  summary: 'insightface / MXNet RecordIO training pack (train.rec + train.idx + property), read lazily by offset',
  options: recordioOptions,
  async create(o, ctx) { return new RecordioSource(o, ctx.resolvePath(o.root), ctx.seed, ctx.log); },
});

export default contributionModule(recordio);

export type { RecordioSource };
