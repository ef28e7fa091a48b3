import path from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import { decodeMany, type RgbImage } from './decode.js';
import { decodeLetterboxed, FaceAligner, resolveAlignment, type AlignmentOptions } from './face-aligner.js';
import { stackImages } from './stack.js';

/**
 * How an evaluation source (lfw-pairs, folder-pairs, group-pairs) reads its images: each file
 * decoded plainly (`decodePlain`), or, with `align:`, letterboxed and aligned. A benchmark
 * never drops an image: one that cannot be read is an error naming it, and a face whose
 * landmarks fail is cropped to the search box instead, counted and reported.
 */
export class BenchmarkImages {
  private readonly aligner?: FaceAligner;
  private unaligned = 0;

  constructor(
    private readonly source: string, private readonly root: string, options: Partial<Record<keyof AlignmentOptions, unknown>>, size: number, cacheDir: string,
    private readonly decodePlain: (file: string) => Promise<RgbImage>, private readonly log?: { warn(s: string): void },
  ) {
    if (resolveAlignment(options).align !== 'none') this.aligner = new FaceAligner(options, size, cacheDir, root);
  }

  /** The files (relative to the root) as [N, size, size, 3] float32 0..255. */
  async load(files: readonly string[]): Promise<tf.Tensor4D> {
    const aligner = this.aligner;
    const decoded = await decodeMany(files, (f) => aligner ? decodeLetterboxed(path.join(this.root, f), aligner.o.decodeSize) : this.decodePlain(f));
    const bad = decoded.findIndex((d) => d instanceof Error);
    // A benchmark with a missing image is not the benchmark: fail loudly, naming the file.
    if (bad >= 0) throw new Error(`${this.source}: cannot read ${path.join(this.root, files[bad]!)}: ${(decoded[bad] as Error).message}`);
    const stacked = stackImages(decoded as RgbImage[]);
    if (!aligner) return stacked;
    try {
      await aligner.init();
      const fileKeys = await Promise.all(files.map((f) => FaceAligner.fileKey(path.join(this.root, f))));
      const r = await aligner.align(stacked, fileKeys, 'box');
      if (r.failed.length > 0) {
        this.unaligned += r.failed.length;
        this.log?.warn(`${this.source}: ${r.failed.length} image(s) not aligned, cropped to the search box instead (${this.unaligned} so far): ${r.failed.map((f) => `${files[f.index]} (${f.reason})`).join('; ')}`);
      }
      await aligner.save(1024);
      return r.images;
    } finally {
      stacked.dispose();
    }
  }

  dispose(): void { this.aligner?.dispose(); }
}
