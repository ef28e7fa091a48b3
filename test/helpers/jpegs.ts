import { execFileSync } from 'node:child_process';
import sharp from 'sharp';

/** A colour JPEG of a flat colour with a mild diagonal ramp, so a wrong image or channel order shows. */
export async function synthJpeg(side: number, rgb: readonly [number, number, number], o: { quality?: number; grey?: boolean } = {}): Promise<Buffer> {
  const px = Buffer.alloc(side * side * 3);
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side; x++) {
      const ramp = Math.round(((x + y) / (2 * side)) * 16) - 8;
      for (let c = 0; c < 3; c++) px[(y * side + x) * 3 + c] = Math.max(0, Math.min(255, rgb[c]! + ramp));
    }
  }
  let img = sharp(px, { raw: { width: side, height: side, channels: 3 } });
  if (o.grey) img = img.toColourspace('b-w');
  return img.jpeg({ quality: o.quality ?? 95, optimiseCoding: true }).toBuffer();
}

/** Mean of each channel of an RGB HWC buffer. */
export function channelMeans(data: Uint8Array): [number, number, number] {
  const s = [0, 0, 0];
  for (let i = 0; i < data.length; i++) s[i % 3]! += data[i]!;
  const n = data.length / 3;
  return [s[0]! / n, s[1]! / n, s[2]! / n];
}

/** Undefined when python3 (with these modules) runs here; else why not, for the skip message. */
export function pythonMissing(modules: readonly string[] = []): string | undefined {
  try {
    execFileSync('python3', ['-c', `import sys${modules.map((m) => `, ${m}`).join('')}`], { stdio: 'pipe' });
    return undefined;
  } catch (e) {
    const what = modules.length ? `python3 with ${modules.join(', ')}` : 'python3';
    return `${what} is needed to write the test packs (${(e as Error).message.split('\n')[0]})`;
  }
}
