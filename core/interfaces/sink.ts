import type { RunEvent } from './events.js';

/** A result writer (JSONL, Markdown, ...). */
export interface Sink {
  write(event: RunEvent): void | Promise<void>;
  close(): Promise<void>;
}
