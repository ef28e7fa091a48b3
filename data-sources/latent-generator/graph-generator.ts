import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { contribution, existingPath, hashJson, readModelArtifacts, type DataSourceInfo } from '../../core/index.js';
import { LatentStream } from './latent-stream.js';
import { synthdistillCrop } from './synthdistill-crop.js';

export const graphGeneratorOptions = z.object({
  model: existingPath('file').optional().describe('one graph model z → image (model.json)'),
  mapping: existingPath('file').optional().describe('StyleGAN-style mapping network z → w (model.json); needs synthesis'),
  synthesis: existingPath('file').optional().describe('synthesis network w → image (model.json); input [N, dim] or [N, numWs, dim] (w is broadcast)'),
  latentDim: z.number().int().min(1).optional().describe('z dimension when the model signature does not say'),
  numWs: z.number().int().min(1).optional().describe('layers w is broadcast to when the synthesis signature does not say'),
  resampleSpace: z.enum(['w', 'z']).optional().describe('where feedback resampling perturbs latents: w (default with mapping + synthesis, as SynthDistill) or z'),
  outputRange: z.tuple([z.number(), z.number()]).default([-1, 1]).describe('the generator output range: clamped to it, then mapped to 0..255'),
  layout: z.enum(['auto', 'nchw', 'nhwc']).default('auto').describe('output layout; auto: NCHW when dimension 1 is 3 and the last is not'),
  crop: z.enum(['synthdistill', 'none']).default('synthdistill').describe('synthdistill: the fixed FFHQ → ArcFace eye crop P (strategy-specs §1.3)'),
  cropSize: z.number().int().min(8).max(512).default(112).describe('side after the crop'),
});
type Options = z.infer<typeof graphGeneratorOptions>;

interface Loaded { readonly model: tf.GraphModel; readonly hash: string; readonly file: string }

async function load(file: string): Promise<Loaded> {
  const { artifacts, hash } = await readModelArtifacts(file);
  return { model: await tf.loadGraphModel(tf.io.fromMemory(artifacts)), hash, file };
}

/** render() must be synchronous: graphs that need executeAsync (control flow) cannot serve. */
function run(m: Loaded, x: tf.Tensor): tf.Tensor {
  let out: tf.Tensor | tf.Tensor[];
  try {
    out = m.model.execute(x);
  } catch (e) {
    if (/executeAsync/.test((e as Error).message)) throw new Error(`graph-generator: ${m.file} has dynamic ops (needs executeAsync); generators must run synchronously`);
    throw e;
  }
  if (Array.isArray(out)) { tf.dispose(out.slice(1)); return out[0]!; }
  return out;
}

/**
 * A generator given as tfjs graph model(s): one z → image, or StyleGAN's mapping z → w and
 * synthesis w → image. Output: clamp to outputRange, map to 0..255, NHWC, then the
 * SynthDistill crop P to cropSize (strategy-specs §1.3–1.4). Latents (what feedback
 * perturbs) live in w or z (`resampleSpace`); z ~ N(0, I).
 */
export class GraphGeneratorSource extends LatentStream {
  private models?: { single?: Loaded; mapping?: Loaded; synthesis?: Loaded };
  private zDim = 0;
  private wDim = 0;
  private numWs = 0;
  private space: 'w' | 'z' = 'z';

  constructor(private readonly o: Options, private readonly paths: { model?: string; mapping?: string; synthesis?: string }, private readonly seed: number) {
    super('graph-generator', seed);
  }

  get latentDim(): number { return this.space === 'w' ? this.wDim : this.zDim; }

  async init(): Promise<DataSourceInfo> {
    const p = this.paths;
    if (!this.models) {
      if (p.model && (p.mapping || p.synthesis)) throw new Error('graph-generator: give either model (z → image) or mapping + synthesis, not both');
      if (!p.model && !(p.mapping && p.synthesis)) throw new Error('graph-generator: needs model (z → image), or both mapping (z → w) and synthesis (w → image)');
      this.models = p.model ? { single: await load(p.model) } : { mapping: await load(p.mapping!), synthesis: await load(p.synthesis!) };
    }
    const first = (this.models.single ?? this.models.mapping)!;
    const zShape = first.model.inputs[0]?.shape ?? [];
    this.zDim = (zShape.length === 2 && zShape[1]! > 0 ? zShape[1]! : this.o.latentDim) ?? 0;
    if (!this.zDim) throw new Error(`graph-generator: the input of ${first.file} does not give the z dimension; set latentDim`);
    const space = this.o.resampleSpace ?? (this.models.mapping ? 'w' : 'z');
    if (space === 'w' && !this.models.mapping) throw new Error('graph-generator: resampleSpace w needs mapping + synthesis (one model has no w)');
    this.space = space;
    if (this.models.synthesis) {
      const sShape = this.models.synthesis.model.inputs[0]?.shape ?? [];
      this.numWs = sShape.length === 3 ? ((sShape[1]! > 0 ? sShape[1] : this.o.numWs) ?? 0) : 0;
      if (sShape.length === 3 && !this.numWs) throw new Error(`graph-generator: the synthesis input of ${this.models.synthesis.file} has an unknown number of layers; set numWs`);
      const probe = tf.tidy(() => this.toW(run(this.models!.mapping!, tf.zeros([1, this.zDim]))));
      this.wDim = probe.shape[1];
      probe.dispose();
    }
    const img = tf.tidy(() => this.render(tf.zeros([1, this.latentDim]) as tf.Tensor2D));
    const [, h, w] = img.shape;
    img.dispose();
    const hashes = [this.models.single, this.models.mapping, this.models.synthesis].filter(Boolean).map((m) => m!.hash);
    return {
      name: `graph-generator (${[p.model, p.mapping, p.synthesis].filter(Boolean).map((f) => path.basename(path.dirname(f!))).join(' + ')}, ${this.space}-space latents of ${this.latentDim}, ${h}×${w} images; synthetic, unbounded)`,
      images: 0, skipped: [], listHash: hashJson({ hashes, o: { ...this.o, model: undefined, mapping: undefined, synthesis: undefined }, seed: this.seed }),
    };
  }

  /** Mapping outputs [N, numWs, dim] broadcast one w already: keep W, not W+. */
  private toW(w: tf.Tensor): tf.Tensor2D {
    if (w.rank === 3) return tf.squeeze(tf.slice(w, [0, 0, 0], [-1, 1, -1]), [1]) as tf.Tensor2D;
    if (w.rank !== 2) throw new Error(`graph-generator: mapping output has rank ${w.rank}; expected [N, dim] or [N, numWs, dim]`);
    return w as tf.Tensor2D;
  }

  protected fresh(n: number): tf.Tensor2D {
    const zs = tf.tensor2d(this.normals(n * this.zDim), [n, this.zDim]);
    if (this.space === 'z') return zs;
    const w = tf.tidy(() => this.toW(run(this.models!.mapping!, zs)));
    zs.dispose();
    return w;
  }

  render(latents: tf.Tensor2D): tf.Tensor4D {
    const m = this.models;
    if (!m) throw new Error('graph-generator: render() before init()');
    const [lo, hi] = this.o.outputRange;
    return tf.tidy(() => {
      let raw: tf.Tensor;
      if (m.single) raw = run(m.single, latents);
      else {
        const w = this.space === 'w' ? latents : this.toW(run(m.mapping!, latents));
        const input = this.numWs > 0 ? tf.tile(tf.expandDims(w, 1), [1, this.numWs, 1]) : w;
        raw = run(m.synthesis!, input);
      }
      if (raw.rank !== 4) throw new Error(`graph-generator: generator output has shape [${raw.shape.join(', ')}]; expected an image batch`);
      const nchw = this.o.layout === 'nchw' || (this.o.layout === 'auto' && raw.shape[1] === 3 && raw.shape[3] !== 3);
      const nhwc = nchw ? tf.transpose(raw, [0, 2, 3, 1]) : raw;
      const x = tf.mul(tf.div(tf.sub(tf.clipByValue(nhwc, lo, hi), lo), hi - lo), 255) as tf.Tensor4D;
      return this.o.crop === 'synthdistill' ? synthdistillCrop(x, this.o.cropSize) : x;
    });
  }

  dispose(): void {
    for (const l of [this.models?.single, this.models?.mapping, this.models?.synthesis]) l?.model.dispose();
    this.models = undefined;
  }
}

export const graphGenerator = contribution({
  slot: 'data',
  kind: 'graph-generator',
  summary: 'synthetic faces from tfjs graph model(s): z → image, or StyleGAN mapping + synthesis, with the SynthDistill crop; a latent generator',
  options: graphGeneratorOptions,
  async create(o, ctx) {
    const r = (p?: string) => (p ? ctx.resolvePath(p) : undefined);
    return new GraphGeneratorSource(o, { model: r(o.model), mapping: r(o.mapping), synthesis: r(o.synthesis) }, ctx.seed);
  },
});
