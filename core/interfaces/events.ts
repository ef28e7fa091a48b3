/** Everything the engine tells hooks and sinks. */
export type RunEvent =
  | { readonly type: 'run-start'; readonly run: string; readonly dir: string; readonly backend: string }
  | { readonly type: 'stage-start'; readonly stage: string; readonly steps: number; readonly fromStep: number; readonly batchSize: number }
  | { readonly type: 'step'; readonly stage: string; readonly step: number; readonly steps: number; readonly lr: number; readonly terms: Readonly<Record<string, number>>; readonly imagesPerSec: number; readonly elapsedSec: number }
  | { readonly type: 'checkpoint'; readonly stage: string; readonly step: number; readonly dir: string }
  | { readonly type: 'rollback'; readonly stage: string; readonly step: number; readonly toStep: number; readonly term: string; readonly lrScale: number }
  | { readonly type: 'stage-end'; readonly stage: string; readonly steps: number }
  | { readonly type: 'eval'; readonly model: string; readonly metrics: Readonly<Record<string, unknown>> }
  | { readonly type: 'run-end'; readonly run: string; readonly wallSec: number };
