// report.md and learning-curve.svg of a finished run.
import path from 'node:path';
import type { BackendChoice } from '../backends/select.js';
import type { AgreementResult, VerificationResult } from '../eval/evaluate.js';
import type { DataSourceInfo } from '../interfaces/data-source.js';
import type { Student } from '../interfaces/student.js';
import type { Teacher } from '../interfaces/teacher.js';
import { curveFromMetrics, learningCurveSvg } from '../report/learning-curve.js';
import { renderReport, type ModelRow, type ReportInput } from '../report/markdown.js';
import type { Recipe } from '../recipe/validate.js';
import { writeFileAtomic } from '../util/fs.js';

export type StageRow = ReportInput['stages'][number];

export async function writeRunReport(o: {
  dir: string; recipe: Recipe; backend: BackendChoice; wallSec: number; teacher: Teacher; student: Student;
  evaluation?: { teacher: VerificationResult; student?: VerificationResult; agreement?: AgreementResult };
  stages: readonly StageRow[]; data: readonly DataSourceInfo[];
}): Promise<void> {
  const curve = curveFromMetrics(path.join(o.dir, 'metrics.jsonl'));
  const svg = learningCurveSvg(curve, o.recipe.shape.name);
  if (svg) await writeFileAtomic(path.join(o.dir, 'learning-curve.svg'), svg);
  const ev = o.evaluation;
  const models: ModelRow[] = [
    { role: 'teacher', name: o.teacher.name, params: o.teacher.paramCount, dim: o.teacher.embeddingDim, ...(ev ? { result: ev.teacher } : {}) },
    { role: 'student', name: o.student.name, params: o.student.paramCount, dim: o.student.embeddingDim, ...(ev?.student ? { result: ev.student } : {}) },
  ];
  await writeFileAtomic(path.join(o.dir, 'report.md'), renderReport({
    run: o.recipe.shape.name, recipeFile: o.recipe.source.file, backend: o.backend.name, backendReason: o.backend.reason, wallSec: o.wallSec,
    models, ...(ev?.agreement ? { agreement: ev.agreement } : {}), stages: o.stages, data: o.data,
    ...(curve.length > 0 ? { curve } : {}),
  }));
}
