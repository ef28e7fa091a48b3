import * as tf from '@tensorflow/tfjs';
import { ADAM_UPDATE, type AdamUpdateAttrs } from '../backends/native/kernels.js';
import type { OptimizerOptions, ScheduleOptions } from '../recipe/schema.js';

/** What FusedAdam reads of tfjs's AdamOptimizer (private there, stable across tfjs 4). */
interface AdamState {
  learningRate: number; beta1: number; beta2: number; epsilon: number;
  accBeta1: tf.Variable; accBeta2: tf.Variable;
  accumulatedFirstMoment: ({ originalName: string; variable: tf.Variable } | undefined)[];
  accumulatedSecondMoment: ({ originalName: string; variable: tf.Variable } | undefined)[];
  incrementIterations(): void;
}

/**
 * tfjs's Adam, with each variable's update one op where the backend registers one (`cpu-native`): tfjs's update is
 * about a dozen ops per variable, and a MobileFaceNet has 150 variables, so the optimiser step was ~2,000 tiny ops.
 * Same slots, names, weights and arithmetic (the native op computes tfjs's float32 operations in tfjs's order: the
 * result is bit for bit tf.train.adam's, tested), so checkpoints move freely between backends.
 */
export class FusedAdam extends tf.AdamOptimizer {
  override applyGradients(variableGradients: Parameters<tf.AdamOptimizer['applyGradients']>[0]): void {
    if (tf.getKernel(ADAM_UPDATE, tf.getBackend()) === undefined) {
      super.applyGradients(variableGradients);
      return;
    }
    const s = this as unknown as AdamState;
    const names = Array.isArray(variableGradients) ? variableGradients.map((v) => v.name) : Object.keys(variableGradients);
    const f = Math.fround;
    // The scalars tfjs makes: sub(1, accBeta1) in float32, and JS numbers turned into float32 scalars.
    const common = {
      beta1: f(s.beta1), oneMinusBeta1: f(1 - s.beta1), beta2: f(s.beta2), oneMinusBeta2: f(1 - s.beta2),
      oneMinusAccBeta1: f(1 - s.accBeta1.dataSync()[0]!), oneMinusAccBeta2: f(1 - s.accBeta2.dataSync()[0]!),
      epsilon: f(s.epsilon), negLearningRate: f(-s.learningRate),
    } satisfies AdamUpdateAttrs;
    tf.tidy(() => {
      names.forEach((name, i) => {
        const value = tf.engine().registeredVariables[name]!;
        const slot = (moments: AdamState['accumulatedFirstMoment'], suffix: string) =>
          (moments[i] ??= { originalName: `${name}/${suffix}`, variable: tf.tidy(() => tf.zerosLike(value).variable(false)) }).variable;
        const m = slot(s.accumulatedFirstMoment, 'm'), v = slot(s.accumulatedSecondMoment, 'v');
        const g: tf.Tensor | undefined = Array.isArray(variableGradients) ? variableGradients[i]!.tensor : variableGradients[name];
        if (g == null) return;
        if (value.dtype !== 'float32' || g.dtype !== 'float32' || !tf.util.arraysEqual(g.shape, value.shape)) {
          throw new Error(`FusedAdam: gradient of ${name} is ${g.dtype} ${JSON.stringify(g.shape)}, variable is ${value.dtype} ${JSON.stringify(value.shape)}`);
        }
        const [newValue, newM, newV] = tf.engine().runKernel(ADAM_UPDATE, { value, m, v, g }, { ...common }) as tf.Tensor[];
        m.assign(newM!);
        v.assign(newV!);
        value.assign(newValue!);
      });
      s.accBeta1.assign(tf.mul(s.accBeta1, s.beta1));
      s.accBeta2.assign(tf.mul(s.accBeta2, s.beta2));
    });
    s.incrementIterations();
  }
}

export function makeOptimizer(o: OptimizerOptions): tf.Optimizer {
  return o.kind === 'adam' ? new FusedAdam(o.lr, o.beta1, o.beta2, o.epsilon) : tf.train.momentum(o.lr, o.momentum, o.nesterov);
}

/** Sets the learning rate of a tfjs optimiser for the next update. */
export function setLearningRate(opt: tf.Optimizer, lr: number): void {
  const o = opt as unknown as { learningRate: number; setLearningRate?: (lr: number) => void };
  if (typeof o.setLearningRate === 'function') o.setLearningRate(lr);
  else o.learningRate = lr;
}

/** Learning rate at 0-based `step` of a stage of `total` steps: warm-up, then the schedule. */
export function learningRateAt(base: number, s: ScheduleOptions, step: number, total: number): number {
  if (s.warmupSteps > 0 && step < s.warmupSteps) return (base * (step + 1)) / s.warmupSteps;
  switch (s.kind) {
    case 'constant':
      return base;
    case 'step':
      return base * Math.pow(s.gamma, s.milestones.filter((m) => step >= m).length);
    case 'cosine': {
      const span = Math.max(1, total - s.warmupSteps);
      const t = Math.min(1, (step - s.warmupSteps) / span);
      return s.minLr + 0.5 * (base - s.minLr) * (1 + Math.cos(Math.PI * t));
    }
  }
}
