import { z } from 'zod';
import {
  contribution, contributionModule, EpochSampler, hashJson, Rng, sampleKey,
  type Batch, type DataSource, type DataSourceInfo, type JsonValue, type PairSource, type SampleKey, type VerificationPair, type Logger,
} from '../../core/index.js';
import { detectSampleFaces, type FaceCrops } from './detect.js';
import { renderViews, type AugmentOptions } from './views.js';

const augment = {
  size: z.number().int().min(16).max(256).default(160).describe('side of each view in px'),
  margin: z.number().min(0.8).max(1.8).default(1.25).describe('view side relative to the detected face box'),
  scaleJitter: z.number().min(0).max(0.3).default(0.08),
  shiftJitter: z.number().min(0).max(0.2).default(0.05),
  brightnessJitter: z.number().min(0).max(0.5).default(0.15),
  flip: z.boolean().default(true),
  minConfidence: z.number().min(0.1).max(0.99).default(0.5).describe('face detector score threshold'),
  align: z.boolean().default(false)
    .describe('5-point align each face (face-api 68-point landmarks → ArcFace template, strategy-specs §7.9) before cutting views'),
};

/** Training views and evaluation views never share a view index. */
const EVAL_VIEW_OFFSET = 1_000_000;

const keyOf = (face: number, view: number): SampleKey => sampleKey(`sample-faces:f${face}:v${view}`);
function parseKey(k: SampleKey): { face: number; view: number } {
  const m = /^sample-faces:f(\d+):v(\d+)$/.exec(k);
  if (!m) throw new Error(`not a sample-faces key: ${k}`);
  return { face: Number(m[1]), view: Number(m[2]) };
}

const cropsCache = new Map<string, Promise<FaceCrops>>();
function crops(cacheDir: string, o: { minConfidence: number; align: boolean }, log: Logger): Promise<FaceCrops> {
  const k = `${cacheDir}|${o.minConfidence}|${o.align}`;
  if (!cropsCache.has(k)) cropsCache.set(k, detectSampleFaces(cacheDir, o.minConfidence, log, o.align).catch((e) => { cropsCache.delete(k); throw e; }));
  return cropsCache.get(k)!;
}

const dataOptions = z.object({ ...augment, viewsPerFace: z.number().int().min(1).default(12).describe('augmented training views per face') });

class SampleFacesSource implements DataSource {
  private faces?: FaceCrops;
  private sampler?: EpochSampler;
  constructor(private readonly o: z.infer<typeof dataOptions>, private readonly seed: number, private readonly cacheDir: string, private readonly log: Logger) {}

  async init(): Promise<DataSourceInfo> {
    this.faces = await crops(this.cacheDir, this.o, this.log);
    this.sampler = new EpochSampler(this.faces.count * this.o.viewsPerFace, this.seed);
    return {
      name: `sample-faces (faces detected${this.o.align ? ' and 5-point aligned' : ''} in the @vladmandic/face-api demo photos)`,
      images: this.faces.count * this.o.viewsPerFace, identities: this.faces.count, skipped: [],
      // The views depend on the seed: it is part of what the images are.
      listHash: hashJson({ faces: this.faces.hash, o: this.o, seed: this.seed }),
    };
  }

  async next(batchSize: number): Promise<Batch> {
    const items = this.sampler!.take(batchSize).map((i) => ({ face: Math.floor(i / this.o.viewsPerFace), view: i % this.o.viewsPerFace }));
    return {
      images: renderViews(this.faces!, items, this.seed, this.o as AugmentOptions),
      keys: items.map((it) => keyOf(it.face, it.view)),
      labels: Int32Array.from(items.map((it) => it.face)),
      cacheable: true,
    };
  }

  state(): JsonValue { return this.sampler!.state(); }
  restore(s: JsonValue): void { this.sampler!.restore(s); }
  dispose(): void { /* crops stay cached for other runs in this process */ }
}

const pairOptions = z.object({ ...augment, seed: z.number().int().min(0).default(1).describe('seed of the evaluation views and pairs (fixed across runs so runs compare)'), pairsPerFace: z.number().int().min(1).default(10).describe('genuine pairs per face; as many impostor pairs') });

/** Genuine = one face under two augmentations; impostor = two different faces. */
class SampleFacePairs implements PairSource {
  readonly name = 'sample-face-pairs';
  readonly protocol = 'sample faces from npm photos: genuine = same face, two augmentations; impostor = different faces (10 contiguous folds)';
  private faces?: FaceCrops;
  constructor(private readonly o: z.infer<typeof pairOptions>, private readonly seed: number, private readonly cacheDir: string, private readonly log: Logger) {}

  async init() {
    this.faces = await crops(this.cacheDir, this.o, this.log);
    const n = this.faces.count;
    const rng = new Rng(this.seed ^ 0x5eed);
    const pairs: VerificationPair[] = [];
    let view = EVAL_VIEW_OFFSET;
    for (let k = 0; k < this.o.pairsPerFace; k++) {
      for (let f = 0; f < n; f++) {
        pairs.push({ a: keyOf(f, view++), b: keyOf(f, view++), same: true });
        const g = (f + 1 + rng.int(n - 1)) % n;
        pairs.push({ a: keyOf(f, view++), b: keyOf(g, view++), same: false });
      }
    }
    rng.shuffle(pairs);
    const images = [...new Set(pairs.flatMap((p) => [p.a, p.b]))];
    return { pairs, images, listHash: hashJson({ faces: this.faces.hash, o: this.o, seed: this.seed }) };
  }

  async load(keys: readonly SampleKey[]) {
    return renderViews(this.faces!, keys.map(parseKey), this.seed, this.o as AugmentOptions);
  }

  dispose(): void {}
}

export const sampleFaces = contribution({
  slot: 'data',
  kind: 'sample-faces',
  summary: 'faces detected (face-api SSD) in the photos npm packages ship, as seeded augmented views: needs no data set',
  options: dataOptions,
  async create(o, ctx) { return new SampleFacesSource(o, ctx.seed, ctx.cacheDir, ctx.log); },
});

export const sampleFacePairs = contribution({
  slot: 'pairs',
  kind: 'sample-face-pairs',
  summary: 'verification pairs from the npm sample faces (works without LFW)',
  options: pairOptions,
  async create(o, ctx) { return new SampleFacePairs(o, o.seed, ctx.cacheDir, ctx.log); },
});

export default contributionModule(sampleFaces, sampleFacePairs);
