/** Everything the engine tells hooks and sinks. */
export type RunEvent =
  | { readonly type: 'run-start'; readonly run: string; readonly dir: string; readonly backend: string }
  | { readonly type: 'stage-start'; readonly stage: string; readonly steps: number; readonly fromStep: number; readonly batchSize: number }
  | { readonly type: 'step'; readonly stage: string; readonly step: number; readonly steps: number; readonly lr: number; readonly terms: Readonly<Record<string, number>>; readonly imagesPerSec: number; readonly elapsedSec: number }
  | { readonly type: 'checkpoint'; readonly stage: string; readonly step: number; readonly dir: string }
  | { readonly type: 'rollback'; readonly stage: string; readonly step: number; readonly toStep: number; readonly term: string; readonly lrScale: number }
  | { readonly type: 'stage-end'; readonly stage: string; readonly steps: number }
  | { readonly type: 'eval'; readonly model: string; readonly metrics: Readonly<Record<string, unknown>> }
  /** One point of the learning curve (`eval.every`): a model evaluated during a stage; the teacher once, at the first point. */
  | { readonly type: 'eval-point'; readonly stage: string; readonly step: number; readonly point: CurvePoint }
  | { readonly type: 'run-end'; readonly run: string; readonly wallSec: number };

/** A model's verification result at one moment of training (a row `event: "eval"` of metrics.jsonl). */
export interface CurvePoint {
  readonly model: 'student' | 'teacher';
  /** Images the stage has trained on so far (step × batch size). */
  readonly imagesSeen: number;
  /** Training seconds of the stage so far (evaluation time excluded). */
  readonly elapsedSec: number;
  readonly accuracy: number;
  readonly std: number;
  readonly tarAtFar: Readonly<Record<string, number>>;
  readonly auc: number;
  /** Seconds this evaluation took. */
  readonly evalSec: number;
}
