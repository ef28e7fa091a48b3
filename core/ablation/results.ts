// Reads what one finished run left in its folder (manifest.json, eval.json, metrics.jsonl)
// into named numbers in report units, plus its ROC and loss curves.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { AgreementResult, VerificationResult } from '../eval/evaluate.js';
import type { RunState } from './state.js';

export type Section = 'verification' | 'agreement' | 'groups' | 'loss' | 'cost';

/** One report column. Values are stored in the unit shown (percentages as 0–100). */
export interface MetricDef {
  readonly key: string;
  readonly label: string;
  readonly section: Section;
  /** Which direction is better (for reading deltas); 'none' for cost figures with no verdict. */
  readonly better: 'higher' | 'lower' | 'none';
  readonly digits: number;
  /** The unit of a difference, e.g. "pp" for percentage points. */
  readonly deltaUnit: string;
}

export interface Curve { readonly x: readonly number[]; readonly y: readonly number[] }

export interface CollectedRun {
  readonly values: Readonly<Record<string, number | null>>;
  readonly defs: readonly MetricDef[];
  readonly roc?: Curve;
  /** Loss term → value per step (steps numbered across stages). */
  readonly losses: Readonly<Record<string, Curve>>;
  /** The wall time misses attempts cut short by a killed sweep. */
  readonly wallIncomplete: boolean;
  readonly teacherAccuracy?: number;
  readonly groupAttribute?: string;
  readonly groupNote?: string;
}

const pctDef = (key: string, label: string, section: Section, better: MetricDef['better'] = 'higher'): MetricDef => ({ key, label, section, better, digits: 2, deltaUnit: 'pp' });

function readJson<T>(file: string): T | undefined {
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as T) : undefined;
}

interface Manifest {
  status: string;
  recipeHash: string;
  wallSec?: number;
  models?: { student?: { params: number } };
  recipe?: { stages?: { name: string; steps: number; batchSize: number }[] };
}

interface StepRow { stage: string; step: number; event?: string; elapsedSec?: number; [k: string]: unknown }

const NOT_TERMS = new Set(['stage', 'step', 'lr', 'imagesPerSec', 'elapsedSec', 'event']);

/** Step rows of metrics.jsonl with replayed steps (after a rollback) kept once, the last time. */
function stepRows(file: string): StepRow[] {
  if (!existsSync(file)) return [];
  const rows = readFileSync(file, 'utf8').split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as StepRow).filter((r) => r.event === undefined);
  const last = new Map<string, StepRow>();
  for (const r of rows) last.set(`${r.stage}\u0000${r.step}`, r);
  return [...last.values()];
}

function lossCurves(rows: readonly StepRow[], stages: readonly { name: string; steps: number }[]): Record<string, { x: number[]; y: number[] }> {
  const offset = new Map<string, number>();
  let acc = 0;
  for (const s of stages) { offset.set(s.name, acc); acc += s.steps; }
  const out: Record<string, { x: number[]; y: number[] }> = {};
  for (const r of [...rows].sort((a, b) => (offset.get(a.stage) ?? 0) + a.step - ((offset.get(b.stage) ?? 0) + b.step))) {
    for (const [k, v] of Object.entries(r)) {
      if (NOT_TERMS.has(k) || typeof v !== 'number') continue;
      const c = (out[k] ??= { x: [], y: [] });
      c.x.push((offset.get(r.stage) ?? 0) + r.step);
      c.y.push(v);
    }
  }
  return out;
}

/** Mean of the last 10 % of a curve's values (at least one): the "final" value, less noisy than the last step. */
export function finalValue(y: readonly number[]): number | null {
  if (y.length === 0) return null;
  const k = Math.max(1, Math.ceil(y.length / 10));
  const tail = y.slice(-k).filter(Number.isFinite);
  return tail.length ? tail.reduce((a, b) => a + b, 0) / tail.length : null;
}

const fin = (x: number | null | undefined): number | null => (x === null || x === undefined || !Number.isFinite(x) ? null : x);

/** Collects a finished run. `state` supplies the wall time measured by the sweep (sum over its attempts). */
export function collectRun(dir: string, state?: RunState): CollectedRun {
  const manifest = readJson<Manifest>(path.join(dir, 'manifest.json'));
  const ev = readJson<{ teacher?: VerificationResult; student?: VerificationResult; agreement?: AgreementResult }>(path.join(dir, 'eval.json'));
  const defs: MetricDef[] = [];
  const values: Record<string, number | null> = {};
  const put = (d: MetricDef, v: number | null | undefined) => { defs.push(d); values[d.key] = fin(v); };

  const s = ev?.student;
  let groupAttribute: string | undefined, groupNote: string | undefined;
  if (s) {
    put(pctDef('accuracy_pct', 'accuracy (%)', 'verification'), 100 * s.accuracy);
    for (const [far, tpr] of Object.entries(s.tarAtFar)) put(pctDef(`tar_at_far_${far}_pct`, `TAR@FAR=${far} (%)`, 'verification'), 100 * tpr);
    put({ key: 'auc', label: 'AUC', section: 'verification', better: 'higher', digits: 4, deltaUnit: '' }, s.auc);
  }
  const ag = ev?.agreement;
  if (ag) {
    put({ key: 'cosine', label: 'mean cos(t, s)', section: 'agreement', better: 'higher', digits: 4, deltaUnit: '' }, ag.meanCosine);
    put({ key: 'spearman', label: 'Spearman ρ', section: 'agreement', better: 'higher', digits: 4, deltaUnit: '' }, ag.spearman);
    put(pctDef('decisions_agree_pct', 'same decisions (%)', 'agreement'), 100 * ag.decisionAgreement);
  }
  const g = s?.groups;
  if (g) {
    groupAttribute = g.attribute;
    const acc = g.accuracy;
    if (acc) {
      for (const [name, a] of Object.entries(acc.accuracies)) put(pctDef(`group_${name}_acc_pct`, `${name} acc (%)`, 'groups'), 100 * a);
      put(pctDef('groups_mean_acc_pct', 'group mean (%)', 'groups'), 100 * acc.mean);
      put(pctDef('groups_std_acc_pct', `group STD (%, ddof ${acc.ddof})`, 'groups', 'lower'), acc.std === null ? null : 100 * acc.std);
      put({ key: 'groups_ser', label: 'SER', section: 'groups', better: 'lower', digits: 3, deltaUnit: '' }, acc.ser);
      groupNote = `per-group accuracy: ${acc.thresholdMode === 'kfold' ? '10-fold cross-validation within each group' : 'one best threshold per group (no CV)'}; STD over groups with ddof ${acc.ddof}; SER = max error / min error (empty when a group has zero error)`;
    } else {
      groupNote = 'groups label a subset of the benchmark (LFW rule): TPR and FPR of the held-out 10-fold decisions; no accuracy-based STD/SER (strategy-specs 7.7)';
    }
    for (const row of g.breakdown) {
      put(pctDef(`group_${row.group}_tpr_pct`, `${row.group} TPR (%)`, 'groups'), row.tpr === null ? null : 100 * row.tpr);
      if (row.impostor > 0) put(pctDef(`group_${row.group}_fpr_pct`, `${row.group} FPR (%)`, 'groups', 'lower'), row.fpr === null ? null : 100 * row.fpr);
    }
  }

  const stages = manifest?.recipe?.stages ?? [];
  const rows = stepRows(path.join(dir, 'metrics.jsonl'));
  const losses = lossCurves(rows, stages);
  for (const [term, c] of Object.entries(losses)) put({ key: `loss_${term}`, label: `final ${term}`, section: 'loss', better: 'lower', digits: 4, deltaUnit: '' }, finalValue(c.y));

  put({ key: 'params', label: 'student params', section: 'cost', better: 'none', digits: 0, deltaUnit: '' }, manifest?.models?.student?.params);
  // Training time survives resumes (checkpoints carry it); it is the last step's elapsed time per stage.
  let trainSec = 0, images = 0;
  for (const st of stages) {
    const last = rows.filter((r) => r.stage === st.name).reduce<StepRow | undefined>((a, r) => (!a || r.step > a.step ? r : a), undefined);
    if (last?.elapsedSec !== undefined) { trainSec += last.elapsedSec; images += last.step * st.batchSize; }
  }
  put({ key: 'train_s', label: 'train time (s)', section: 'cost', better: 'none', digits: 1, deltaUnit: 's' }, trainSec > 0 ? trainSec : null);
  const attempts = state?.attempts ?? [];
  const measured = attempts.filter((a) => a.wallSec !== undefined);
  const wall = measured.length ? measured.reduce((a, x) => a + x.wallSec!, 0) : manifest?.wallSec;
  put({ key: 'wall_s', label: 'wall time (s)', section: 'cost', better: 'none', digits: 1, deltaUnit: 's' }, wall);
  put({ key: 'train_images_per_s', label: 'train images/s', section: 'cost', better: 'higher', digits: 1, deltaUnit: '' }, trainSec > 0 ? images / trainSec : null);

  return {
    values, defs, losses, wallIncomplete: attempts.some((a) => a.interrupted),
    ...(s?.roc ? { roc: { x: s.roc.fpr, y: s.roc.tpr } } : {}),
    ...(ev?.teacher ? { teacherAccuracy: 100 * ev.teacher.accuracy } : {}),
    ...(groupAttribute ? { groupAttribute } : {}), ...(groupNote ? { groupNote } : {}),
  };
}

/** Whether a run folder holds a finished run of exactly this recipe. */
export function isFinished(dir: string, recipeHash: string, needsEval: boolean): boolean {
  const m = readJson<Manifest>(path.join(dir, 'manifest.json'));
  return m !== undefined && m.status === 'complete' && m.recipeHash === recipeHash && (!needsEval || existsSync(path.join(dir, 'eval.json')));
}

export function manifestHash(dir: string): string | undefined {
  return readJson<Manifest>(path.join(dir, 'manifest.json'))?.recipeHash;
}
