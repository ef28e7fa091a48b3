import type { RunEvent } from './events.js';

/** Ordered callbacks; lower priority runs first. */
export interface Hook {
  readonly priority: number;
  on(event: RunEvent): void | Promise<void>;
}
