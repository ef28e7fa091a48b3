import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { ensureDir, writeFileAtomic } from '../../core/index.js';
import type { PcaModel } from './pca-fit.js';

// One file per fitted model: "PCAF", uint32 header length, JSON header (fit-input hash and
// shapes), zero padding to a multiple of 4, then float32 little-endian mean[D],
// components[k·D], sigma[k].

const MAGIC = 'PCAF';

export interface PcaHeader {
  /** Hash of the fit inputs (source list, options): a file is reused only when it matches. */
  readonly hash: string;
  readonly size: number;
  readonly components: number;
  readonly images: number;
  readonly explained: number;
  readonly source: string;
}

export async function savePcaModel(file: string, m: PcaModel, meta: { hash: string; source: string }): Promise<void> {
  const k = m.sigma.length;
  const header: PcaHeader = { hash: meta.hash, size: m.size, components: k, images: m.images, explained: m.explained, source: meta.source };
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const pad = (4 - ((8 + json.length) % 4)) % 4;
  const floats = new Float32Array(m.mean.length + m.components.length + k);
  floats.set(m.mean, 0);
  floats.set(m.components, m.mean.length);
  floats.set(m.sigma, m.mean.length + m.components.length);
  const head = Buffer.alloc(8);
  head.write(MAGIC, 0, 'ascii');
  head.writeUInt32LE(json.length, 4);
  await ensureDir(path.dirname(file));
  await writeFileAtomic(file, Buffer.concat([head, json, Buffer.alloc(pad), Buffer.from(floats.buffer)]));
}

/** Reads a model file; throws naming the file when it is not one or is truncated. */
export async function loadPcaModel(file: string): Promise<{ header: PcaHeader; model: PcaModel }> {
  const b = await readFile(file);
  if (b.length < 8 || b.toString('ascii', 0, 4) !== MAGIC) throw new Error(`pca-face: ${file} is not a pca-face model file`);
  const len = b.readUInt32LE(4);
  const header = JSON.parse(b.toString('utf8', 8, 8 + len)) as PcaHeader;
  const start = 8 + len + ((4 - ((8 + len) % 4)) % 4);
  const d = header.size * header.size * 3, k = header.components;
  const want = (d + k * d + k) * 4;
  if (b.length - start !== want) throw new Error(`pca-face: ${file} holds ${b.length - start} data bytes, expected ${want}: truncated or foreign; delete it to refit`);
  const floats = new Float32Array(b.buffer.slice(b.byteOffset + start, b.byteOffset + b.length));
  return {
    header,
    model: {
      size: header.size, mean: floats.slice(0, d), components: floats.slice(d, d + k * d), sigma: floats.slice(d + k * d),
      images: header.images, explained: header.explained,
    },
  };
}
