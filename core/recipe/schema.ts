import { z } from 'zod';

// The recipe's own keys. Component slots (`kind:` + options) are checked in a second pass
// against the schema of the contribution they name, so plugins extend recipes without
// touching this file.

export const componentRef = z.looseObject({ kind: z.string().describe('registered component kind') });
export type ComponentRef = z.infer<typeof componentRef>;

const lr = z.number().positive().describe('base learning rate');
const weightDecay = z.number().min(0).describe('L2 weight decay added to the gradient (decoupled from the loss terms)');
// Optional without a default, so that recipes that do not set it keep their hash (finished runs stay finished).
const clipGradNorm = z.number().positive().optional()
  .describe('clip the global L2 norm of the step\'s gradients (student and strategy variables together) to this value before the update, as torch.nn.utils.clip_grad_norm_ (MST-KD: 5)');
const decayBatchNorm = z.boolean().optional()
  .describe('false: no weight decay on BatchNorm scale/offset (the student\'s BatchNormalization layers and the normalisation parameters a strategy names), as many face recipes train; default true');

export const optimizerSchema = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('adam'),
    lr: lr.default(1e-3),
    beta1: z.number().min(0).max(1).default(0.9),
    beta2: z.number().min(0).max(1).default(0.999),
    epsilon: z.number().positive().default(1e-7),
    weightDecay: weightDecay.default(0),
    decayBatchNorm,
    clipGradNorm,
  }),
  z.strictObject({
    kind: z.literal('sgd'),
    lr: lr.default(0.1),
    momentum: z.number().min(0).max(1).default(0.9),
    nesterov: z.boolean().default(false),
    weightDecay: weightDecay.default(5e-4),
    decayBatchNorm,
    clipGradNorm,
  }),
]);
export type OptimizerOptions = z.infer<typeof optimizerSchema>;

const warmupSteps = z.number().int().min(0).default(0).describe('linear warm-up from 0 over this many steps');
export const scheduleSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('constant'), warmupSteps }),
  z.strictObject({
    kind: z.literal('step'),
    warmupSteps,
    milestones: z.array(z.number().int().positive()).min(1).describe('steps at which lr is multiplied by gamma'),
    gamma: z.number().positive().default(0.1),
  }),
  z.strictObject({ kind: z.literal('cosine'), warmupSteps, minLr: z.number().min(0).default(0) }),
]);
export type ScheduleOptions = z.infer<typeof scheduleSchema>;

const name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'letters, digits, ".", "_" or "-" (it names a folder)');

export const stageSchema = z.strictObject({
  name,
  strategy: componentRef,
  steps: z.number().int().positive(),
  batchSize: z.number().int().positive().max(4096, 'at most 4096 images per step (a batch must fit in memory several times over)').default(16),
  optimizer: optimizerSchema.default({ kind: 'adam', lr: 1e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-7, weightDecay: 0 }),
  schedule: scheduleSchema.default({ kind: 'constant', warmupSteps: 0 }),
  checkpointEvery: z.number().int().positive().default(50).describe('steps between checkpoints'),
  /** Per-stage overrides of the recipe-level components. */
  data: componentRef.optional(),
  teacher: componentRef.optional(),
});
export type StageRecipe = z.infer<typeof stageSchema>;

export const fairnessSchema = z.strictObject({
  stdDdof: z.union([z.literal(0), z.literal(1)]).default(1).describe('ddof of the across-group STD (strategy-specs 7.7: 1, as TFace)'),
  thresholdMode: z.enum(['kfold', 'singleBest']).default('kfold')
    .describe('per-group accuracy: 10-fold cross-validation within the group, or one best threshold on the whole group (no CV, optimistic)'),
});
export type FairnessOptions = z.infer<typeof fairnessSchema>;

export const evalSchema = z.strictObject({
  pairs: componentRef,
  flip: z.boolean().default(true).describe('flip test: embed x and flip_W(x), sum, normalise (strategy-specs 7.1)'),
  batchSize: z.number().int().positive().max(4096, 'at most 4096 images per evaluation batch').default(32),
  far: z.array(z.number().gt(0).lt(1)).default([1e-3, 1e-4]).describe('FAR targets for TAR@FAR'),
  fairness: fairnessSchema.optional().describe('per-group metrics where the pairs carry group labels (defaults: stdDdof 1, kfold)'),
  every: z.number().int().positive().optional()
    .describe('also evaluate the student every N steps of each stage (and at step 0 and the stage end): rows event "eval" in metrics.jsonl, the learning curve in report.md and learning-curve.svg'),
});
export type EvalRecipe = z.infer<typeof evalSchema>;

export const BACKENDS = ['auto', 'tensorflow', 'cpu-native', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKENDS)[number];

export const recipeSchema = z.strictObject({
  name: name.describe('run name: results go to <runsDir>/<name>/'),
  description: z.string().optional(),
  extends: z.string().optional().describe('base recipe (one level) this one overrides'),
  plugins: z.array(z.string()).default([]).describe('JS modules exporting a ContainerModule'),
  seed: z.number().int().min(0).default(0),
  backend: z.enum(BACKENDS).default('auto'),
  runsDir: z.string().default('runs'),
  cacheDir: z.string().optional()
    .describe('shared cache (teacher embeddings, fitted generators, detected faces); default <runsDir>/.cache. Ablation cells point theirs at one folder'),
  teacher: componentRef,
  student: componentRef.optional(),
  data: componentRef.optional(),
  eval: evalSchema.optional(),
  stages: z.array(stageSchema).min(1).optional(),
});
export type RecipeShape = z.infer<typeof recipeSchema>;
