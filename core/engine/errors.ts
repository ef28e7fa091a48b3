/** A loss term went NaN or ±Inf: the step is stopped before any weight changes. */
export class NonFiniteLossError extends Error {
  constructor(readonly term: string, readonly value: number, readonly step: number) {
    super(`loss term "${term}" is ${value} at step ${step}`);
    this.name = 'NonFiniteLossError';
  }
}

/** A run cannot go on; the message says why and what to do. The CLI exits 3. */
export class RunError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RunError';
  }
}
