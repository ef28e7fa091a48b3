import * as tf from '@tensorflow/tfjs';
import type { DataSource } from '../interfaces/data-source.js';
import type { RunEvent } from '../interfaces/events.js';
import type { LossTerms } from '../interfaces/loss.js';
import type { StepContext, Strategy } from '../interfaces/strategy.js';
import type { Student } from '../interfaces/student.js';
import type { Teacher } from '../interfaces/teacher.js';
import type { ResolvedStage } from '../recipe/validate.js';
import { Rng, type RngState } from '../util/rng.js';
import type { Logger } from '../util/logger.js';
import { type Checkpoint, type CheckpointStore, type NamedArray, toNamedArrays } from './checkpoint.js';
import { NonFiniteLossError, RunError } from './errors.js';
import { faultPoint } from './fault-points.js';
import { learningRateAt, makeOptimizer, setLearningRate } from './optimizer.js';
import type { TeacherCache } from './teacher-cache.js';

export interface StageRun {
  readonly stageIndex: number;
  readonly stage: ResolvedStage;
  readonly recipeHash: string;
  readonly student: Student;
  readonly teacher: Teacher;
  readonly cache: TeacherCache;
  readonly data: DataSource;
  readonly strategy: Strategy;
  readonly seed: number;
  readonly checkpoints: CheckpointStore;
  readonly emit: (e: RunEvent) => Promise<void>;
  readonly log: Logger;
  /** Resume from this checkpoint (same stage). */
  readonly resumeFrom?: Checkpoint;
  /** Rollbacks allowed after a non-finite loss before the run stops. */
  readonly maxRollbacks?: number;
  /**
   * Evaluation during training (`eval.every`): called at step 0 of a fresh stage, every
   * `every` steps and at the last step, before that step's checkpoint, with the stage's
   * training time so far (its own time is not counted as training).
   */
  /** Called before each checkpoint is written (the engine makes metrics.jsonl durable up to this step). */
  readonly beforeCheckpoint?: () => Promise<void>;
  readonly periodicEval?: { readonly every: number; run(at: { step: number; imagesSeen: number; elapsedSec: number }): Promise<void> };
}

/** Restores a LayersModel's (or a variable list's) values from named arrays, in order. */
export function assignAll(vars: readonly tf.Variable[] | readonly tf.LayerVariable[], arrs: readonly NamedArray[], what: string): void {
  if (vars.length !== arrs.length) throw new RunError(`checkpoint holds ${arrs.length} ${what} tensors, the model has ${vars.length}: the recipe's model changed`);
  vars.forEach((v, i) => {
    const a = arrs[i]!;
    const t = tf.tensor(a.data, [...a.shape], a.dtype);
    (v as tf.Variable).assign ? (v as tf.Variable).assign(t) : (v as tf.LayerVariable).write(t);
    t.dispose();
  });
}

type AdamScalars = { accBeta1?: tf.Variable; accBeta2?: tf.Variable };

/** Adam's β^t products, read exactly, so a resumed run continues bit for bit. */
function optimizerScalars(opt: tf.Optimizer): Record<string, number> {
  const a = opt as unknown as AdamScalars;
  return a.accBeta1 && a.accBeta2 ? { accBeta1: a.accBeta1.dataSync()[0]!, accBeta2: a.accBeta2.dataSync()[0]! } : {};
}

function restoreOptimizerScalars(opt: tf.Optimizer, saved: Readonly<Record<string, number>> | undefined): void {
  const a = opt as unknown as AdamScalars;
  for (const k of ['accBeta1', 'accBeta2'] as const) {
    const v = saved?.[k];
    if (v !== undefined && a[k]) tf.tidy(() => a[k]!.assign(tf.scalar(v)));
  }
}

/**
 * Gradients scaled by max/(‖g‖ + 1e-6) where that is below 1, ‖g‖ the L2 norm over all of
 * them (torch.nn.utils.clip_grad_norm_'s rule); the same map when no clip is set or none is needed.
 */
export async function clipByGlobalNorm(grads: tf.NamedTensorMap, max: number | undefined): Promise<tf.NamedTensorMap> {
  const gs = Object.values(grads);
  if (max === undefined || gs.length === 0) return grads;
  const normT = tf.tidy(() => tf.sqrt(tf.addN(gs.map((g) => tf.sum(tf.square(g))))));
  const norm = (await normT.data())[0]!;
  normT.dispose();
  const coef = max / (norm + 1e-6);
  if (!(coef < 1)) return grads;
  return tf.tidy(() => Object.fromEntries(Object.entries(grads).map(([k, g]) => [k, tf.mul(g, coef)])));
}

/** Trains one stage: the loop, LR schedule, checkpoints, NaN guard with rollback. */
export async function trainStage(r: StageRun): Promise<{ steps: number; elapsedSec: number; imagesPerSec: number }> {
  const st = r.stage.recipe;
  const rng = new Rng(r.seed);
  let opt = makeOptimizer(st.optimizer);
  const weightDecay = st.optimizer.weightDecay;
  const studentVars = (): tf.Variable[] => r.student.model.trainableWeights.map((w) => w.read() as tf.Variable);
  const allVars = (): tf.Variable[] => [...studentVars(), ...r.strategy.variables()];
  // Variables without weight decay (`decayBatchNorm: false`): BatchNorm γ/β of the student and those the strategy names
  // (both fixed once the stage is set up).
  const noDecay: ReadonlySet<string> = st.optimizer.decayBatchNorm !== false ? new Set() : new Set([
    ...r.student.model.layers.filter((l) => l.getClassName() === 'BatchNormalization').flatMap((l) => l.trainableWeights.map((w) => (w.read() as tf.Variable).name)),
    ...(r.strategy.normalisationVariables?.() ?? []).map((v) => v.name),
  ]);
  let step = 0;
  let lrScale = 1;
  let elapsed = 0;
  let rollbacks = 0;
  /** Rollbacks since the last checkpoint was written. */
  let sinceSave = 0;
  let currentLr = st.optimizer.lr;

  const snapshot = async (): Promise<Checkpoint> => {
    const optWeights = opt.iterations > 0 ? await opt.getWeights() : [];
    const optArrays = await toNamedArrays(optWeights);
    // getWeights() returns the live slot variables plus a fresh iteration-count scalar: free that one.
    tf.dispose(optWeights.map((w) => w.tensor).filter((t) => !(t instanceof tf.Variable)));
    return {
      state: {
        recipeHash: r.recipeHash, stageIndex: r.stageIndex, stage: st.name, step, lrScale,
        rng: [...rng.state()], data: r.data.state(), strategy: r.strategy.state(), elapsedSec: elapsed,
        optimizerScalars: optimizerScalars(opt),
      },
      tensors: {
        student: await toNamedArrays(r.student.model.weights.map((w) => ({ name: w.name, tensor: w.read() }))),
        strategy: await toNamedArrays(r.strategy.variables().map((v) => ({ name: v.name, tensor: v }))),
        optimizer: optArrays,
      },
    };
  };

  const restore = async (ck: Checkpoint): Promise<void> => {
    assignAll(r.student.model.weights, ck.tensors.student, 'student');
    assignAll(r.strategy.variables(), ck.tensors.strategy, 'strategy');
    if (ck.tensors.optimizer.length === 0) {
      // A checkpoint from before the first update: start the optimiser afresh.
      opt.dispose();
      opt = makeOptimizer(st.optimizer);
    } else {
      const named = ck.tensors.optimizer.map((a) => ({ name: a.name, tensor: tf.tensor(a.data, [...a.shape], a.dtype) }));
      await opt.setWeights(named);
      tf.dispose(named.map((n) => n.tensor)); // setWeights copies them into variables
      restoreOptimizerScalars(opt, ck.state.optimizerScalars);
    }
    rng.restore(ck.state.rng as unknown as RngState);
    r.data.restore(ck.state.data);
    r.strategy.restore(ck.state.strategy);
    step = ck.state.step;
    lrScale = ck.state.lrScale;
    elapsed = ck.state.elapsedSec;
  };

  const save = async (): Promise<void> => {
    let dir: string;
    try {
      await r.beforeCheckpoint?.();
      faultPoint('checkpoint:metrics-synced', step);
      dir = await r.checkpoints.save(await snapshot());
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === undefined || !['ENOSPC', 'EDQUOT', 'EROFS', 'EACCES', 'EPERM', 'EIO'].includes(code)) throw e;
      // Checkpoints are written aside and renamed: the previous one is whole.
      throw new RunError(`cannot write the checkpoint of step ${step} (${(e as Error).message.split('\n')[0]}); the previous checkpoint is intact: free space (or fix the folder's permissions) and run again with --resume`);
    }
    sinceSave = 0;
    await r.emit({ type: 'checkpoint', stage: st.name, step, dir });
  };

  const evaluate = async (): Promise<void> => {
    if (r.periodicEval) await r.periodicEval.run({ step, imagesSeen: step * st.batchSize, elapsedSec: elapsed });
  };

  if (r.resumeFrom) await restore(r.resumeFrom);
  else {
    await evaluate();
    await save(); // step 0: a rollback target exists from the start
  }
  await r.emit({ type: 'stage-start', stage: st.name, steps: st.steps, fromStep: step, batchSize: st.batchSize });

  const update = async (lossFn: () => LossTerms): Promise<Record<string, number>> => {
    const vars = allVars();
    let terms: Record<string, tf.Scalar> = {};
    const { value, grads } = tf.variableGrads(() => {
      const t = lossFn();
      terms = Object.fromEntries(Object.entries(t).map(([k, v]) => [k, tf.keep(v)]));
      return tf.addN(Object.values(t)) as tf.Scalar;
    }, vars);
    const out: Record<string, number> = {};
    try {
      for (const [k, v] of Object.entries(terms)) {
        out[k] = (await v.data())[0]!;
        if (!Number.isFinite(out[k])) throw new NonFiniteLossError(k, out[k]!, step + 1);
      }
      const clipped = await clipByGlobalNorm(grads, st.optimizer.clipGradNorm);
      // Weight decay after clipping, as torch's optimisers add it inside step() after clip_grad_norm_.
      const decayed = weightDecay > 0
        ? tf.tidy(() => Object.fromEntries(vars.filter((v) => clipped[v.name]).map((v) => [v.name, noDecay.has(v.name) ? tf.clone(clipped[v.name]!) : tf.add(clipped[v.name]!, tf.mul(v, weightDecay))])))
        : clipped;
      opt.applyGradients(decayed as tf.NamedTensorMap);
      if (decayed !== clipped) tf.dispose(decayed);
      if (clipped !== grads) tf.dispose(clipped);
    } finally {
      tf.dispose([value, ...Object.values(grads), ...Object.values(terms)]);
    }
    return out;
  };

  const ctx: { -readonly [K in keyof StepContext]: StepContext[K] } = {
    step, batchSize: st.batchSize, student: r.student, teacher: r.teacher, data: r.data, rng,
    teacherEmbeddings: (b) => r.cache.embed(b),
    update,
  };

  let imagesPerSec = 0;
  while (step < st.steps) {
    currentLr = learningRateAt(st.optimizer.lr, st.schedule, step, st.steps) * lrScale;
    setLearningRate(opt, currentLr);
    ctx.step = step;
    const t0 = performance.now();
    let values: Readonly<Record<string, number>>;
    try {
      values = await r.strategy.step(ctx);
    } catch (e) {
      if (!(e instanceof NonFiniteLossError)) throw e;
      const ck = await r.checkpoints.latest((c) => r.log.warn(`${c.message}: skipped, rolling back further`));
      if (!ck || ck.state.stageIndex !== r.stageIndex || rollbacks >= (r.maxRollbacks ?? 3)) {
        throw new RunError(`${e.message}; stopped after ${rollbacks} rollback(s). Lower the learning rate (stages[${r.stageIndex}].optimizer.lr) or check the data; the last good checkpoint is kept`);
      }
      rollbacks++;
      sinceSave++;
      const failedAt = step + 1;
      await restore(ck);
      // Halved once per rollback since the checkpoint was written: retrying its own scale would fail the same way.
      lrScale *= 0.5 ** sinceSave;
      r.log.warn(`${e.message}: rolled back to step ${step} and halved the learning rate (scale ${lrScale})`);
      await r.emit({ type: 'rollback', stage: st.name, step: failedAt, toStep: step, term: e.term, lrScale });
      continue;
    }
    const dt = (performance.now() - t0) / 1000;
    elapsed += dt;
    step++;
    imagesPerSec = st.batchSize / dt;
    await r.emit({ type: 'step', stage: st.name, step, steps: st.steps, lr: currentLr, terms: values, imagesPerSec, elapsedSec: elapsed });
    if (r.periodicEval && (step % r.periodicEval.every === 0 || step === st.steps)) await evaluate();
    if (step % st.checkpointEvery === 0 || step === st.steps) await save();
  }
  opt.dispose();
  await r.emit({ type: 'stage-end', stage: st.name, steps: st.steps });
  return { steps: st.steps, elapsedSec: elapsed, imagesPerSec: (st.steps * st.batchSize) / Math.max(elapsed, 1e-9) };
}

/** Restores variables from named arrays saved by the engine, in order. */
export function assignVariables(vars: readonly tf.Variable[], arrs: readonly NamedArray[]): void {
  assignAll(vars, arrs, 'strategy');
}
