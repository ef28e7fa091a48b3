import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import {
  contribution, contributionModule, decodeImage, decodeMany, existingPath, hashJson, sampleKey, stackImages,
  type PairSource, type RgbImage, type SampleKey, type VerificationPair,
} from '../../core/index.js';
import { parseBinPack, type BinPack } from './bin-pack.js';

export const insightfaceBinOptions = z.object({
  path: existingPath('file').describe('insightface verification pack, e.g. lfw.bin, cfp_fp.bin, agedb_30.bin'),
  size: z.number().int().min(16).max(512).default(112).describe('decoded side in px (packs store 112 px aligned crops; other sizes resize)'),
  limit: z.number().int().positive().optional().describe('use only the first N pairs (quick checks; folds then follow the contiguous rule over N)'),
});
type Options = z.infer<typeof insightfaceBinOptions>;

const keyOf = (name: string, i: number): SampleKey => sampleKey(`${name}#${i}`);

class InsightfaceBin implements PairSource {
  readonly name = 'insightface-bin';
  readonly protocol: string;
  private pack?: BinPack;
  private readonly index = new Map<SampleKey, number>();
  private readonly base: string;

  constructor(private readonly o: Options, private readonly file: string) {
    this.base = path.basename(file);
    this.protocol = `insightface pack ${this.base} (5-point aligned crops as stored, ${o.size} px; 10 contiguous folds)`;
  }

  async init() {
    const buf = await readFile(this.file);
    const pack = parseBinPack(new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength), this.file);
    this.pack = pack;
    const n = Math.min(pack.issame.length, this.o.limit ?? Infinity);
    // Folds stay undefined: the contiguous 10-fold rule over pair order is the protocol (7.4).
    const pairs: VerificationPair[] = [];
    for (let i = 0; i < n; i++) pairs.push({ a: keyOf(this.base, 2 * i), b: keyOf(this.base, 2 * i + 1), same: pack.issame[i]! });
    const images = pairs.flatMap((p) => [p.a, p.b]);
    images.forEach((k, i) => this.index.set(k, i));
    // The hash names what is evaluated (the JPEGs and labels of the used pairs), not how it was
    // pickled, so embedding caches survive re-pickling a pack.
    const h = createHash('sha256');
    for (let i = 0; i < 2 * n; i++) h.update(`${pack.images[i]!.length}:`).update(pack.images[i]!);
    const content = h.update(pack.issame.slice(0, n).map((s) => (s ? '1' : '0')).join('')).digest('hex');
    return { pairs, images, listHash: hashJson({ content, size: this.o.size }) };
  }

  async load(keys: readonly SampleKey[]) {
    const pack = this.pack;
    if (!pack) throw new Error('insightface-bin: load() before init()');
    const decoded = await decodeMany(keys, (k) => {
      const i = this.index.get(k);
      if (i === undefined) throw new Error(`not a key of this pack: ${k}`);
      const b = pack.images[i]!;
      return decodeImage(Buffer.from(b.buffer, b.byteOffset, b.byteLength), { size: this.o.size });
    });
    const bad = decoded.findIndex((d) => d instanceof Error);
    // A benchmark with an unreadable image is not the benchmark: fail loudly, naming the element.
    if (bad >= 0) throw new Error(`insightface-bin: ${this.file}: cannot decode ${keys[bad]} (bins[${this.index.get(keys[bad]!) ?? '?'}]): ${(decoded[bad] as Error).message}`);
    return stackImages(decoded as RgbImage[]);
  }

  dispose(): void { this.pack = undefined; this.index.clear(); }
}

export const insightfaceBin = contribution({
  slot: 'pairs',
  kind: 'insightface-bin',
  summary: 'insightface .bin verification pack (pickled (bins, issame_list): LFW, CFP-FP, AgeDB-30, CALFW, CPLFW, RFW)',
  options: insightfaceBinOptions,
  async create(o, ctx) { return new InsightfaceBin(o, ctx.resolvePath(o.path)); },
});

export default contributionModule(insightfaceBin);
