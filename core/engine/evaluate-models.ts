// The final evaluation of a run (and of `facedistill eval`): teacher and student on the
// recipe's pairs, the teacher's embeddings cached for every run and cell that shares them.
import * as tf from '@tensorflow/tfjs';
import { agreement, embedImages, sharedEmbeddingCacheFile, verify, type AgreementResult, type PairSet, type VerificationResult } from '../eval/evaluate.js';
import type { PairSource } from '../interfaces/pair-source.js';
import type { Teacher } from '../interfaces/teacher.js';
import type { Recipe } from '../recipe/validate.js';
import { hashJson } from '../util/hash.js';
import type { Logger } from '../util/logger.js';
import { build, buildContext, cacheDirOf } from './build-context.js';

/** Evaluates teacher (and student) on the recipe's pairs; embeddings cached in the run folder. */
export async function evaluateModels(recipe: Recipe, dir: string, log: Logger, models: { teacher: Teacher; student?: { readonly name: string; embed: (x: tf.Tensor4D) => Promise<tf.Tensor2D> } }, given?: PairSource): Promise<{ teacher: VerificationResult; student?: VerificationResult; agreement?: AgreementResult }> {
  const ev = recipe.shape.eval!;
  // A source given by the caller (the one periodic evaluation read) stays the caller's to dispose.
  const source = given ?? await build(recipe.evalPairs!, buildContext(recipe, dir, log));
  try {
    const init = await source.init();
    const set: PairSet = { source, ...init };
    const settings = { flip: ev.flip, batchSize: ev.batchSize, far: ev.far, ...(ev.fairness ? { fairness: ev.fairness } : {}) };
    log.info(`eval: ${set.pairs.length} pairs, ${set.images.length} images — ${source.protocol}`);
    const progress = (what: string) => {
      let next = 0.2;
      return (done: number, total: number) => { if (done / total >= next) { log.info(`eval: ${what} ${done}/${total} images`); next += 0.2; } };
    };
    const te = await embedImages(set, (x) => models.teacher.embed(x), settings, teacherEvalCacheFile(recipe, models.teacher, set), models.teacher.weightsHash, progress(models.teacher.name));
    const tv = verify(set, te.table, settings, te.seconds);
    log.info(`eval: teacher ${models.teacher.name}: accuracy ${(100 * tv.accuracy).toFixed(2)} ± ${(100 * tv.std).toFixed(2)} %`);
    if (!models.student) return { teacher: strip(tv) };
    const student = models.student;
    const se = await embedImages(set, (x) => student.embed(x), settings, undefined, '', progress(student.name));
    const sv = verify(set, se.table, settings, se.seconds);
    log.info(`eval: student ${student.name}: accuracy ${(100 * sv.accuracy).toFixed(2)} ± ${(100 * sv.std).toFixed(2)} %`);
    const ag = agreement({ table: te.table, dist: tv.dist, predictions: tv.predictions }, { table: se.table, dist: sv.dist, predictions: sv.predictions }, set.images);
    return { teacher: strip(tv), student: strip(sv), agreement: ag };
  } finally {
    if (!given) source.dispose();
  }
}

/** Where a teacher's embeddings of the recipe's pair set are cached, shared by runs and cells. */
export function teacherEvalCacheFile(recipe: Recipe, teacher: Teacher, set: PairSet): string {
  return sharedEmbeddingCacheFile(cacheDirOf(recipe), `teacher-${teacher.name}`, hashJson([set.listHash, teacher.weightsHash, recipe.shape.eval!.flip]));
}

function strip(v: VerificationResult & { dist?: unknown; predictions?: unknown }): VerificationResult {
  const { dist: _d, predictions: _p, ...rest } = v;
  return rest;
}
