// Which keys of an insightface RecordIO pack are images, and their classes (strategy-specs 7.8;
// deepinsight/insightface recognition/arcface_torch/dataset.py MXFaceDataset):
//   record 0 with flag 2 holds [A, B_end]: image keys 1 … A−1, identity records A … B_end−1, each
//   with flag 2 and the half-open image key range [start, end) of class (key − A);
//   record 0 with flag 0 is an image itself and every key in the .idx is an image.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../../core/index.js';
import { exactIndex, FLOAT32_EXACT_LIMIT, parseIrHeader } from './irheader.js';
import type { RecordFile, RecordIndex } from './recordio-file.js';

export interface PackProperty {
  readonly classes: number;
  readonly height: number;
  readonly width: number;
  /** Optional line 2. */
  readonly images?: number;
}

export interface PackLayout {
  readonly kind: 'header' | 'flat';
  /** Image keys, ascending. */
  readonly imageKeys: Int32Array | Float64Array;
  /** Size of the label space (class ids are 0 … classes − 1). */
  readonly classes: number;
  /** Header packs: class of image key k from the identity records (−1 where none covers k). */
  readonly classOfKey?: Int32Array;
  readonly property: PackProperty;
}

/** `property`: line 1 `num_classes,height,width`, optional line 2 the image count. */
export function parseProperty(text: string, file: string): PackProperty {
  const lines = text.split('\n').map((l) => l.trim()).filter((l, i, all) => l !== '' || i < all.length - 1);
  const nums = (line: string | undefined, no: number, count: number) => {
    const parts = (line ?? '').split(',').map((x) => x.trim());
    if (parts.length !== count || !parts.every((x) => /^\d+$/.test(x))) {
      throw new Error(`${file}:${no}: expected ${count === 3 ? '"num_classes,height,width"' : 'the image count'}, found "${line ?? ''}"`);
    }
    return parts.map(Number);
  };
  const [classes, height, width] = nums(lines[0], 1, 3) as [number, number, number];
  if (classes === 0) throw new Error(`${file}:1: num_classes is 0`);
  if (classes > FLOAT32_EXACT_LIMIT) throw new Error(`${file}:1: ${classes} classes: labels ≥ 2^24 are not exact in float32 (IRHeader), so this pack cannot be read faithfully`);
  const second = lines[1];
  return { classes, height, width, ...(second !== undefined && second !== '' ? { images: nums(second, 2, 1)[0]! } : {}) };
}

async function mapPool<T, R>(items: ArrayLike<T>, inFlight: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => { while (next < items.length) { const i = next++; out[i] = await fn(items[i]!, i); } };
  await Promise.all(Array.from({ length: Math.min(inFlight, items.length) }, worker));
  return out;
}

export async function readPackLayout(root: string, rec: RecordFile, idx: RecordIndex, log: Logger): Promise<PackLayout> {
  const recName = path.basename(rec.file);
  const propFile = path.join(root, 'property');
  const property = parseProperty(await readFile(propFile, 'utf8'), propFile);

  // Cheap whole-file checks: every offset inside the file, and the last record complete.
  let last = -1;
  for (const k of idx.keys) {
    const off = idx.offsetOf(k)!;
    if (off >= rec.size) throw new Error(`train.idx: key ${k} points at byte ${off}, beyond the end of ${recName} (${rec.size} bytes; truncated?)`);
    last = Math.max(last, off);
  }
  await rec.read(last, 64);

  const off0 = idx.offsetOf(0);
  if (off0 === undefined) throw new Error(`train.idx has no key 0 (the header record of an insightface pack)`);
  const h0 = parseIrHeader(await rec.read(off0, 256), `${recName}: key 0 (byte ${off0})`);

  if (h0.flag === 0) {
    const imageKeys = Float64Array.from(idx.keys).sort();
    return { kind: 'flat', imageKeys, classes: property.classes, property };
  }
  if (h0.flag !== 2) throw new Error(`${recName}: key 0 (byte ${off0}): header record has flag ${h0.flag}; expected 2 ([A, B_end]) or 0 (every key an image)`);
  const [a, bEnd] = [h0.labels[0]!, h0.labels[1]!];
  for (const [name, v] of [['A', a], ['B_end', bEnd]] as const) {
    const why = exactIndex(v);
    if (why) throw new Error(`${recName}: key 0 (byte ${off0}): header ${name} = ${why}`);
  }
  if (a < 1 || bEnd < a) throw new Error(`${recName}: key 0 (byte ${off0}): header [A, B_end] = [${a}, ${bEnd}] is not a valid key range`);
  const classes = bEnd - a;
  if (classes !== property.classes) throw new Error(`${propFile}: num_classes ${property.classes} but the header record of ${recName} lists ${classes} identity records ([${a}, ${bEnd}))`);

  const missing: number[] = [];
  for (let k = 1; k < bEnd && missing.length < 5; k++) if (idx.offsetOf(k) === undefined) missing.push(k);
  if (missing.length) throw new Error(`train.idx lacks key(s) ${missing.join(', ')}${missing.length === 5 ? ', …' : ''} of the ranges the header record names (images 1…${a - 1}, identities ${a}…${bEnd - 1})`);

  const imageKeys = new Int32Array(a - 1).map((_, i) => i + 1);
  const classOfKey = new Int32Array(a).fill(-1);
  const idKeys = Array.from({ length: classes }, (_, i) => a + i);
  const ranges = await mapPool(idKeys, 16, async (k) => {
    const off = idx.offsetOf(k)!;
    const where = `${recName}: identity record key ${k} (byte ${off})`;
    const h = parseIrHeader(await rec.read(off, 64), where);
    if (h.flag < 2) throw new Error(`${where}: flag ${h.flag}, expected 2 ([start, end) of its image keys)`);
    const [s, e] = [h.labels[0]!, h.labels[1]!];
    const why = exactIndex(s) ?? exactIndex(e);
    if (why) throw new Error(`${where}: image key range: ${why}`);
    if (s < 1 || e < s || e > a) throw new Error(`${where}: image key range [${s}, ${e}) is outside the image keys 1…${a - 1}`);
    return [s, e] as const;
  });
  ranges.forEach(([s, e], cls) => {
    for (let k = s; k < e; k++) {
      if (classOfKey[k] !== -1) throw new Error(`${recName}: identity records key ${a + classOfKey[k]!} and key ${a + cls} both claim image key ${k}`);
      classOfKey[k] = cls;
    }
  });
  if (property.images !== undefined && property.images !== imageKeys.length) {
    log.warn(`${propFile}: line 2 says ${property.images} images, the header record of ${recName} names ${imageKeys.length}`);
  }
  return { kind: 'header', imageKeys, classes, classOfKey, property };
}
