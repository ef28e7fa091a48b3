import type { AgreementResult, VerificationResult } from '../eval/evaluate.js';
import { learningCurveMarkdown, type CurveRow } from './learning-curve.js';

export interface ModelRow {
  readonly role: 'teacher' | 'student';
  readonly name: string;
  readonly params: number;
  readonly dim: number;
  readonly result?: VerificationResult;
}

export interface ReportInput {
  readonly run: string;
  readonly recipeFile: string;
  readonly backend: string;
  readonly backendReason: string;
  readonly wallSec: number;
  readonly models: readonly ModelRow[];
  readonly agreement?: AgreementResult;
  readonly stages: readonly { name: string; strategy: string; steps: number; batchSize: number; imagesPerSec: number; finalTerms: Record<string, number> }[];
  readonly data: readonly { name: string; images: number; identities?: number; skipped: readonly { file: string; reason: string }[] }[];
  /** Evaluation during training (`eval.every`), if any. */
  readonly curve?: readonly CurveRow[];
}

const pct = (x: number) => (100 * x).toFixed(2);

export function renderReport(r: ReportInput): string {
  const out: string[] = [`# facedistill run \`${r.run}\``, '', `Recipe: \`${r.recipeFile}\` · backend: **${r.backend}** (${r.backendReason}) · wall time: ${r.wallSec.toFixed(1)} s`, ''];
  const evaluated = r.models.filter((m) => m.result);
  if (evaluated.length > 0) {
    const res = evaluated[0]!.result!;
    const fars = Object.keys(res.tarAtFar);
    out.push('## Verification', '', `Protocol: ${res.protocol}; ${res.pairs} pairs; ${res.flip ? 'flip test on (Accuracy-Flip)' : 'no flip test'}; accuracy = mean ± population std over 10 folds, threshold chosen on the other 9.`, '');
    out.push(`| model | role | accuracy (%) | ${fars.map((f) => `TAR@FAR=${f} (%)`).join(' | ')} | AUC | params | dim | images/s |`);
    out.push(`|---|---|---|${fars.map(() => '---').join('|')}|---|---|---|---|`);
    for (const m of evaluated) {
      const v = m.result!;
      out.push(`| ${m.name} | ${m.role} | ${pct(v.accuracy)} ± ${pct(v.std)} | ${fars.map((f) => pct(v.tarAtFar[f]!)).join(' | ')} | ${v.auc.toFixed(4)} | ${m.params.toLocaleString('en-US')} | ${m.dim} | ${Number.isFinite(v.imagesPerSec) ? v.imagesPerSec.toFixed(1) : 'cached'} |`);
    }
    out.push('');
  }
  if (r.agreement) {
    const a = r.agreement;
    out.push('## Teacher–student agreement', '', '| mean embedding cosine | Spearman ρ of pair scores | agreeing decisions (%) |', '|---|---|---|');
    out.push(`| ${a.meanCosine === null ? 'n/a (dims differ)' : a.meanCosine.toFixed(4)} | ${a.spearman.toFixed(4)} | ${pct(a.decisionAgreement)} |`, '');
  }
  if (r.curve) out.push(...learningCurveMarkdown(r.curve));
  if (r.stages.length > 0) {
    out.push('## Training', '', '| stage | strategy | steps | batch | images/s | final loss terms |', '|---|---|---|---|---|---|');
    for (const s of r.stages) {
      out.push(`| ${s.name} | ${s.strategy} | ${s.steps} | ${s.batchSize} | ${s.imagesPerSec.toFixed(1)} | ${Object.entries(s.finalTerms).map(([k, v]) => `${k} = ${v.toPrecision(4)}`).join(', ')} |`);
    }
    out.push('');
  }
  if (r.data.length > 0) {
    out.push('## Data', '');
    for (const d of r.data) {
      out.push(`- ${d.name}: ${d.images} images${d.identities !== undefined ? `, ${d.identities} identities` : ''}, ${d.skipped.length} skipped`);
      for (const s of d.skipped) out.push(`  - skipped \`${s.file}\`: ${s.reason}`);
    }
    out.push('');
  }
  return out.join('\n');
}
