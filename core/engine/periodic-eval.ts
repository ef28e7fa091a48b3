import type { CurvePoint, RunEvent } from '../interfaces/events.js';
import type { Student } from '../interfaces/student.js';
import type { Teacher } from '../interfaces/teacher.js';
import { embedImages, verify, type EmbedFn, type EvalSettings, type PairSet } from '../eval/evaluate.js';
import type { MemoPairSource } from '../eval/memo-pairs.js';
import type { Logger } from '../util/logger.js';
import type { StageRun } from './trainer.js';

export interface PeriodicEvalOptions {
  readonly every: number;
  readonly stage: string;
  readonly source: MemoPairSource;
  readonly settings: EvalSettings;
  readonly student: Student;
  readonly teacher: Teacher;
  /** Where the teacher's embeddings of this pair set are cached (shared with the final evaluation). */
  readonly teacherCacheFile: (set: PairSet) => string;
  readonly emit: (e: RunEvent) => Promise<void>;
  readonly log: Logger;
}

async function evaluateOnce(set: PairSet, embed: EmbedFn, settings: EvalSettings, cacheFile?: string, modelHash?: string): Promise<Omit<CurvePoint, 'model' | 'imagesSeen' | 'elapsedSec'>> {
  const t0 = performance.now();
  const e = await embedImages(set, embed, settings, cacheFile, modelHash);
  const v = verify(set, e.table, settings, e.seconds);
  return { accuracy: v.accuracy, std: v.std, tarAtFar: v.tarAtFar, auc: v.auc, evalSec: (performance.now() - t0) / 1000 };
}

/**
 * The learning curve of a stage: the student evaluated on the recipe's pairs (images read once
 * and kept in memory) at the steps the trainer calls it, each point an `eval-point` event. At
 * the stage's step 0 the stage's teacher is evaluated too (from the shared embedding cache
 * after the first time), so the curve has its ceiling beside it.
 */
export function periodicEvaluation(o: PeriodicEvalOptions): NonNullable<StageRun['periodicEval']> {
  return {
    every: o.every,
    async run(at) {
      const init = await o.source.init();
      const set: PairSet = { source: o.source, ...init };
      if (at.step === 0) {
        const t = await evaluateOnce(set, (x) => o.teacher.embed(x), o.settings, o.teacherCacheFile(set), o.teacher.weightsHash);
        await o.emit({ type: 'eval-point', stage: o.stage, step: 0, point: { model: 'teacher', imagesSeen: 0, elapsedSec: 0, ...t } });
      }
      const s = await evaluateOnce(set, async (x) => o.student.forward(x, false), o.settings);
      o.log.info(`eval @ ${o.stage} step ${at.step} (${at.imagesSeen.toLocaleString('en-US')} images, ${(at.elapsedSec / 60).toFixed(1)} min): student ${(100 * s.accuracy).toFixed(2)} ± ${(100 * s.std).toFixed(2)} % (${s.evalSec.toFixed(0)} s)`);
      await o.emit({ type: 'eval-point', stage: o.stage, step: at.step, point: { model: 'student', imagesSeen: at.imagesSeen, elapsedSec: at.elapsedSec, ...s } });
    },
  };
}
