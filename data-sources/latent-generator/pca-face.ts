import { existsSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import {
  componentField, contribution, disposeBatch, hashJson,
  type BuildContext, type DataSource, type DataSourceInfo, type Logger,
} from '../../core/index.js';
import { PREPROCESSING_VERSION } from '../../core/cache/preprocessing-version.js';
import { LatentStream } from './latent-stream.js';
import { fitPca, type PcaModel } from './pca-fit.js';
import { loadPcaModel, savePcaModel } from './pca-model-file.js';

export const pcaFaceOptions = z.object({
  fitOn: componentField('data'),
  components: z.number().int().min(1).max(1024).default(64).describe('k: principal components kept (needs more than k fit images)'),
  size: z.number().int().min(8).max(256).default(112).describe('side of the modelled (and rendered) images in px'),
  maxImages: z.number().int().min(2).default(1000).describe('fit on at most this many images of fitOn (one pass of its sampler); the fit costs O(N²·D + N³)'),
  truncation: z.number().gt(0).max(4).default(1).describe('ψ: fresh latents w ~ N(0, ψ²I)'),
  modelFile: z.string().min(1).optional().describe('where the fitted model is kept (default: <runsDir>/.cache/pca-face/<hash>.pcaf); refitted when its inputs changed'),
});
type Options = z.infer<typeof pcaFaceOptions>;

/** Images read from a source per next() call while collecting the fit set. */
const READ_BATCH = 32;

/** Reads `count` images of `src` (one pass of its sampler), resized to size×size, as N×D floats 0..255. */
async function readFitImages(src: DataSource, count: number, size: number): Promise<Float32Array> {
  const d = size * size * 3;
  const out = new Float32Array(count * d);
  for (let got = 0; got < count;) {
    const b = await src.next(Math.min(READ_BATCH, count - got));
    try {
      const x = tf.tidy(() => {
        const [, h, w] = b.images.shape;
        return h === size && w === size ? b.images.clone() : tf.image.resizeBilinear(b.images, [size, size], false, true);
      });
      out.set(await x.data(), got * d);
      got += x.shape[0];
      x.dispose();
    } finally {
      disposeBatch(b);
    }
  }
  return out;
}

/**
 * The key of a fit (its default file name under `<cacheDir>/pca-face/`, and the hash a saved
 * model file must carry to be reused): fit inputs, options and the preprocessing version.
 */
export function pcaFitHash(o: Pick<Options, 'fitOn' | 'size' | 'components'>, listHash: string, count: number, seed: number | null, preprocessingVersion = PREPROCESSING_VERSION): string {
  return hashJson({ v: 1, fitOn: o.fitOn, listHash, count, size: o.size, components: o.components, seed, preprocessing: preprocessingVersion }).slice(0, 24);
}

/** Fits the model on `fitOn`, or loads the saved fit of the same inputs. */
async function fittedModel(o: Options, ctx: BuildContext, log: Logger): Promise<{ model: PcaModel; hash: string; source: string }> {
  const src = await ctx.build('data', o.fitOn);
  try {
    const info = await src.init();
    const count = Math.min(o.maxImages, info.images);
    if (count <= o.components) throw new Error(`pca-face: ${o.components} components need more than ${o.components} fit images; fitOn (${info.name}) gives ${count} (maxImages ${o.maxImages})`);
    // The images one sampler pass picks depend on the seed only when it picks a subset. How
    // fitOn prepared them (PREPROCESSING_VERSION) is in the key too, so a fix refits.
    const hash = pcaFitHash(o, info.listHash, count, count < info.images ? ctx.seed : null);
    const file = o.modelFile ? ctx.resolvePath(o.modelFile) : path.join(ctx.cacheDir, 'pca-face', `${hash}.pcaf`);
    if (existsSync(file)) {
      const saved = await loadPcaModel(file);
      if (saved.header.hash === hash) {
        log.info(`pca-face: reusing the fit in ${path.relative(process.cwd(), file)} (${saved.header.components} components of ${saved.header.images} images)`);
        return { model: saved.model, hash, source: info.name };
      }
      log.warn(`pca-face: ${file} was fitted on other inputs (hash ${saved.header.hash} ≠ ${hash}): refitting`);
    }
    const t0 = performance.now();
    const images = await readFitImages(src, count, o.size);
    const model = fitPca(images, count, o.size, o.components);
    await savePcaModel(file, model, { hash, source: info.name });
    log.info(`pca-face: fitted ${o.components} components on ${count} images of ${info.name} (${(100 * model.explained).toFixed(1)} % of the variance) in ${((performance.now() - t0) / 1000).toFixed(1)} s → ${path.relative(process.cwd(), file)}`);
    return { model, hash, source: info.name };
  } finally {
    src.dispose();
  }
}

/**
 * A linear morphable face model (eigenfaces): latents w ∈ R^k in units of each component's
 * standard deviation, rendered as clamp(mean + Σ_k σ_k w_k u_k, 0, 255). Fresh w ~ N(0, ψ²I),
 * i.e. z = σ ⊙ w ~ N(0, ψ² diag σ²) (strategy-specs §1.4 resampling happens in w, so a std of
 * 1 moves a face by one standard deviation along every component).
 */
export class PcaFaceSource extends LatentStream {
  private tensors?: { mean: tf.Tensor2D; components: tf.Tensor2D; sigma: tf.Tensor2D };
  private fit?: { model: PcaModel; hash: string; source: string };

  constructor(private readonly o: Options, private readonly ctx: BuildContext) {
    super('pca-face', ctx.seed);
  }

  get latentDim(): number { return this.o.components; }
  /** The fitted model (after init). */
  get model(): PcaModel | undefined { return this.fit?.model; }

  async init(): Promise<DataSourceInfo> {
    this.fit ??= await fittedModel(this.o, this.ctx, this.ctx.log);
    const m = this.fit.model;
    const d = m.size * m.size * 3;
    this.tensors ??= {
      mean: tf.tensor2d(m.mean, [1, d]),
      components: tf.tensor2d(m.components, [this.o.components, d]),
      sigma: tf.tensor2d(m.sigma, [1, this.o.components]),
    };
    return {
      name: `pca-face (${this.o.components} components fitted on ${m.images} images of ${this.fit.source}; synthetic, unbounded)`,
      images: 0, skipped: [],
      listHash: hashJson({ fit: this.fit.hash, seed: this.ctx.seed, truncation: this.o.truncation }),
    };
  }

  protected fresh(n: number): tf.Tensor2D {
    const w = this.normals(n * this.o.components);
    if (this.o.truncation !== 1) for (let i = 0; i < w.length; i++) w[i] = w[i]! * this.o.truncation;
    return tf.tensor2d(w, [n, this.o.components]);
  }

  render(latents: tf.Tensor2D): tf.Tensor4D {
    const t = this.tensors;
    if (!t) throw new Error('pca-face: render() before init()');
    if (latents.shape[1] !== this.o.components) throw new Error(`pca-face: latents have ${latents.shape[1]} columns, the model ${this.o.components}`);
    const s = this.fit!.model.size;
    return tf.tidy(() => tf.clipByValue(tf.add(tf.matMul(tf.mul(latents, t.sigma), t.components), t.mean), 0, 255).reshape([latents.shape[0], s, s, 3]) as tf.Tensor4D);
  }

  dispose(): void {
    if (this.tensors) tf.dispose([this.tensors.mean, this.tensors.components, this.tensors.sigma]);
    this.tensors = undefined;
  }
}

export const pcaFace = contribution({
  slot: 'data',
  kind: 'pca-face',
  summary: 'synthetic faces from a PCA (eigenface) model fitted on another data source; a latent generator (SynthDistill resampling)',
  options: pcaFaceOptions,
  async create(o, ctx) { return new PcaFaceSource(o, ctx); },
});
