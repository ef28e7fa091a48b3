/**
 * The kinds of on-disk cache facedistill keeps under a cache root (`<runsDir>/.cache`, or a
 * recipe's `cacheDir:`): one folder per kind, named here. `facedistill cache ls | clear` only
 * ever looks into (and deletes inside) these folders; anything else in the root is left alone.
 * A new cache kind adds its folder here (and PREPROCESSING_VERSION to its key if its content
 * depends on how images were prepared).
 */
export interface CacheKind {
  /** Folder name under the cache root. */
  readonly name: string;
  /** What it holds, for `cache ls`. */
  readonly description: string;
  /** Whose code writes it. */
  readonly writer: string;
}

export const CACHE_KINDS: readonly CacheKind[] = [
  { name: 'teacher-embeddings', description: 'teacher embeddings of training images', writer: 'core/engine/teacher-cache.ts' },
  { name: 'eval-embeddings', description: 'frozen models\' embeddings of evaluation pairs', writer: 'core/eval/evaluate.ts' },
  { name: 'landmarks', description: 'face landmarks found for image alignment', writer: 'core/images' },
  { name: 'aligned-faces', description: 'aligned faces of training folders (image-folder with align:)', writer: 'core/images/aligned-cache.ts' },
  { name: 'sample-faces', description: 'faces detected (and aligned) in the face-api sample photos', writer: 'data-sources/sample-faces/detect.ts' },
  { name: 'pca-face', description: 'fitted pca-face generators (eigenfaces)', writer: 'data-sources/latent-generator/pca-face.ts' },
];

export function cacheKind(name: string): CacheKind | undefined {
  return CACHE_KINDS.find((k) => k.name === name);
}
