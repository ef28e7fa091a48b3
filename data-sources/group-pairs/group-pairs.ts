import { readFile } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { BenchmarkImages } from '../../core/images/benchmark-images.js';
import { alignmentDescription, alignmentFields, resolveAlignment } from '../../core/images/face-aligner.js';
import {
  contribution, contributionModule, decodeImage, existingPath, hashJson, holdoutField, inHoldoutPart, Rng, sampleKey,
  type PairSource, type SampleKey, type VerificationPair,
} from '../../core/index.js';

export const groupPairsOptions = z.object({
  root: existingPath('folder').describe('image folder (e.g. ../shared/data/utkface-112/images)'),
  labels: existingPath('file').describe('CSV with a header row naming at least the file and group columns (utkface-112/labels.csv)'),
  fileColumn: z.string().default('file').describe('column holding the image file name, relative to root'),
  groupColumn: z.string().default('race').describe('column holding the group label'),
  pairsPerGroup: z.number().int().min(5).default(50).describe('genuine pairs per group; as many impostor pairs (3 images per genuine/impostor couple)'),
  size: z.number().int().min(16).max(512).default(112).describe('decoded side in px'),
  seed: z.number().int().min(0).default(1).describe('seed of the image choice and the views (fixed across runs so runs compare)'),
  scaleJitter: z.number().min(0).max(0.3).default(0.08).describe('genuine views: max relative zoom'),
  shiftJitter: z.number().min(0).max(0.2).default(0.05).describe('genuine views: max shift as a fraction of the side'),
  brightnessJitter: z.number().min(0).max(0.5).default(0.15).describe('genuine views: max relative brightness change'),
  holdout: holdoutField,
  ...alignmentFields,
});
type Options = z.infer<typeof groupPairsOptions>;

/** One CSV line; double-quoted fields may hold commas and "" for a quote. */
export function parseCsvLine(line: string): string[] {
  const out: string[] = [];
  let cur = '', quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') { cur += '"'; i++; } else if (c === '"') quoted = false; else cur += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') { out.push(cur); cur = ''; } else cur += c;
  }
  out.push(cur);
  return out;
}

const keyOf = (file: string, view: number): SampleKey => sampleKey(`group-pairs:${file}#${view}`);
function parseKey(k: SampleKey): { file: string; view: number } {
  const m = /^group-pairs:(.+)#(\d+)$/.exec(k);
  if (!m) throw new Error(`not a group-pairs key: ${k}`);
  return { file: m[1]!, view: Number(m[2]) };
}

/**
 * Identity-free verification pairs grouped by a label (UTKFace race): with no identities the only
 * certain genuine pair is one image under two seeded views (zoom, shift, brightness; never a flip,
 * which the flip test would cancel); impostors are two different images of the same group. Each
 * group is a benchmark of its own (strategy-specs 7.7 'benchmark' mode), so per-group accuracy,
 * STD and SER are defined; the per-group FPR is the group's false-match rate.
 */
class GroupPairs implements PairSource {
  readonly name = 'group-pairs';
  readonly protocol: string;
  private readonly images: BenchmarkImages;

  constructor(private readonly o: Options, private readonly root: string, private readonly labelsFile: string, cacheDir: string, log?: { warn(s: string): void }) {
    const split = o.holdout ? `, the ${o.holdout.use === 'holdout' ? 'held-out' : 'training'} part of a ${o.holdout.share} file-name split` : '';
    const crop = (o.align ?? 'none') !== 'none' ? `; ${alignmentDescription(o, o.size)}` : '';
    this.protocol = `${path.basename(labelsFile)} grouped by ${o.groupColumn}${split}: genuine = one image under two views, impostor = two images of one group (no identities)${crop}`;
    this.images = new BenchmarkImages('group-pairs', root, o, o.size, cacheDir, (f) => decodeImage(path.join(root, f), { size: o.size }), log);
  }

  async init() {
    const lines = (await readFile(this.labelsFile, 'utf8')).split(/\r?\n/).filter((l) => l.trim() !== '');
    const header = parseCsvLine(lines[0] ?? '');
    const fi = header.indexOf(this.o.fileColumn), gi = header.indexOf(this.o.groupColumn);
    if (fi < 0 || gi < 0) throw new Error(`group-pairs: ${this.labelsFile} has columns ${header.join(', ')}; expected "${this.o.fileColumn}" and "${this.o.groupColumn}"`);
    const byGroup = new Map<string, string[]>();
    for (const l of lines.slice(1)) {
      const cells = parseCsvLine(l);
      const g = cells[gi]?.trim(), f = cells[fi]?.trim();
      if (!g || !f || !inHoldoutPart(f, this.o.holdout)) continue;
      byGroup.set(g, [...(byGroup.get(g) ?? []), f]);
    }
    const rng = new Rng(this.o.seed ^ 0x9a1f);
    const pairs: VerificationPair[] = [];
    for (const group of [...byGroup.keys()].sort()) {
      const files = byGroup.get(group)!.sort();
      rng.shuffle(files);
      const n = this.o.pairsPerGroup;
      if (files.length < 3 * n) throw new Error(`group-pairs: group "${group}" has ${files.length} images; ${3 * n} are needed for ${n} genuine + ${n} impostor pairs`);
      for (let i = 0; i < n; i++) {
        pairs.push({ a: keyOf(files[i]!, 1), b: keyOf(files[i]!, 2), same: true, group });
        pairs.push({ a: keyOf(files[n + 2 * i]!, 0), b: keyOf(files[n + 2 * i + 1]!, 0), same: false, group });
      }
    }
    // Shuffled so that the overall run's contiguous folds mix groups (per-group order stays random too).
    rng.shuffle(pairs);
    const images = [...new Set(pairs.flatMap((p) => [p.a, p.b]))];
    return {
      pairs, images, groups: { attribute: `${this.o.groupColumn} (${path.basename(this.labelsFile)})`, mode: 'benchmark' as const },
      listHash: hashJson({ labels: path.basename(this.labelsFile), o: { ...this.o, root: undefined, labels: undefined, ...((this.o.align ?? 'none') !== 'none' ? { align: resolveAlignment(this.o) } : {}) }, first: pairs[0], n: pairs.length }),
    };
  }

  async load(keys: readonly SampleKey[]): Promise<tf.Tensor4D> {
    const parsed = keys.map(parseKey);
    const images = await this.images.load(parsed.map((k) => k.file));
    try {
      return tf.tidy(() => {
        const boxes: number[][] = [], gains: number[] = [];
        for (const k of parsed) {
          // The same key always renders the same view.
          const r = new Rng(hashSeed(`${this.o.seed}|${k.file}|${k.view}`));
          const half = (1 - this.o.scaleJitter * r.next()) / 2;
          const shift = Math.min(this.o.shiftJitter, 0.5 - half); // the view stays inside the image
          const cx = 0.5 + shift * (2 * r.next() - 1), cy = 0.5 + shift * (2 * r.next() - 1);
          boxes.push([cy - half, cx - half, cy + half, cx + half]);
          gains.push(1 + this.o.brightnessJitter * (2 * r.next() - 1));
        }
        const cut = tf.image.cropAndResize(images, boxes, parsed.map((_, i) => i), [this.o.size, this.o.size], 'bilinear');
        return tf.clipByValue(tf.mul(cut, tf.tensor4d(gains, [parsed.length, 1, 1, 1])), 0, 255) as tf.Tensor4D;
      });
    } finally {
      images.dispose();
    }
  }

  dispose(): void { this.images.dispose(); }
}

function hashSeed(s: string): number {
  return Number.parseInt(hashJson(s).slice(0, 8), 16) >>> 0;
}

export const groupPairs = contribution({
  slot: 'pairs',
  kind: 'group-pairs',
  summary: 'identity-free pairs grouped by a CSV label column (UTKFace race): per-group accuracy, STD, SER',
  options: groupPairsOptions,
  async create(o, ctx) { return new GroupPairs(o, ctx.resolvePath(o.root), ctx.resolvePath(o.labels), ctx.cacheDir, ctx.log); },
});

export default contributionModule(groupPairs);
