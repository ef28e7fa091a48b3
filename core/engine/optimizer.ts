import * as tf from '@tensorflow/tfjs';
import type { OptimizerOptions, ScheduleOptions } from '../recipe/schema.js';

export function makeOptimizer(o: OptimizerOptions): tf.Optimizer {
  return o.kind === 'adam' ? tf.train.adam(o.lr, o.beta1, o.beta2, o.epsilon) : tf.train.momentum(o.lr, o.momentum, o.nesterov);
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
