/**
 * The version of the image preparation code (decoding, landmark detection, alignment, crops, the kernels they run on).
 * Every on-disk cache whose content depends on how images were prepared (teacher embeddings, evaluation embeddings,
 * landmarks, fitted generators) puts it in its key, so a fix to that code can never be answered from a stale cache.
 * Bump it whenever such code changes what it outputs.
 *
 * History: 1 — before versioned keys; 2 — batched alignment correct on `cpu`/`cpu-native` (tfjs-backend-cpu 4.22's
 * Transform kernel warped only the first image of a batch); 3 — the shared FaceAligner (landmarks kept as float32;
 * a benchmark face whose landmarks are implausible is cropped to the search box).
 */
export const PREPROCESSING_VERSION = 3;
