// Every injection token of the framework, in one place. Inject by token, never by reflected
// type, so plugins can be plain JS and bundlers that drop decorator metadata still work.
export const TOKENS = {
  /** Multi-bound: one `Contribution` per registered component kind (teachers, students, ...). */
  Contribution: Symbol.for('facedistill.Contribution'),
  /** Multi-bound: hooks called on every run event (README "Hooks and sinks"; examples/hooks/). */
  Hook: Symbol.for('facedistill.Hook'),
  /** Multi-bound: result writers, called on every run event after the hooks (metrics.jsonl and the progress bar are two). */
  Sink: Symbol.for('facedistill.Sink'),
} as const;
