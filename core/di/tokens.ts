// Every injection token of the framework, in one place. Inject by token, never by reflected
// type, so plugins can be plain JS and bundlers that drop decorator metadata still work.
export const TOKENS = {
  /** Multi-bound: one `Contribution` per registered component kind (teachers, students, ...). */
  Contribution: Symbol.for('facedistill.Contribution'),
  /** Multi-bound: hooks called around runs, stages, steps, evaluations and checkpoints. */
  Hook: Symbol.for('facedistill.Hook'),
  /** Multi-bound: result writers. */
  Sink: Symbol.for('facedistill.Sink'),
  /** Multi-bound: evaluation metrics computed on pair scores. */
  Metric: Symbol.for('facedistill.Metric'),
  /** Run-scoped services (bound in the per-run child container). */
  RunContext: Symbol.for('facedistill.RunContext'),
  Logger: Symbol.for('facedistill.Logger'),
} as const;
