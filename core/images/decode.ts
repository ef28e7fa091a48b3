import sharp from 'sharp';

sharp.cache(false);

export interface DecodeOptions {
  /** Output side in px (square). */
  readonly size: number;
  /** Centre crop of this many px (of the source) before resizing; omit for the whole image. */
  readonly centreCrop?: number;
}

/** A decoded image: RGB uint8, HWC, `size`×`size`. */
export interface RgbImage {
  readonly data: Uint8Array;
  readonly size: number;
}

/** Decodes a JPEG/PNG/WebP/PGM file (or buffer) to RGB; throws with the file named on corrupt input. */
export async function decodeImage(input: string | Buffer, o: DecodeOptions): Promise<RgbImage> {
  let img = sharp(input, { failOn: 'error' });
  if (o.centreCrop !== undefined) {
    const meta = await img.metadata();
    const w = meta.width ?? 0, h = meta.height ?? 0;
    const c = Math.min(o.centreCrop, w, h);
    img = img.extract({ left: Math.floor((w - c) / 2), top: Math.floor((h - c) / 2), width: c, height: c });
  }
  const { data } = await img.resize(o.size, o.size, { fit: 'fill' }).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  if (data.length !== o.size * o.size * 3) throw new Error(`unexpected channel count decoding ${typeof input === 'string' ? input : 'buffer'}`);
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), size: o.size };
}

/** Decodes many files with a few in flight (sharp runs on libuv's pool). */
export async function decodeMany<T>(items: readonly T[], fn: (item: T) => Promise<RgbImage>, inFlight = 8): Promise<(RgbImage | Error)[]> {
  const out: (RgbImage | Error)[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      try { out[i] = await fn(items[i]!); } catch (e) { out[i] = e as Error; }
    }
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, items.length) }, worker));
  return out;
}
