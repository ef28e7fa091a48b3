// `<runsDir>/<ablation>/ablation.json`: what the sweep did to each run, across invocations.
// The run folders themselves (manifest status + recipe hash) decide what is finished; this
// file adds what they cannot know: attempts, wall time per process, and why a run failed.
import { existsSync, readFileSync } from 'node:fs';
import { writeJsonAtomic } from '../util/fs.js';

export interface Attempt {
  readonly startedAt: string;
  /** new: empty folder; resume: continue a run of the same recipe; fresh: move a run of an older recipe aside. */
  readonly mode: 'new' | 'resume' | 'fresh';
  wallSec?: number;
  exitCode?: number | null;
  signal?: string | null;
  /** The sweep was killed while this attempt ran: its wall time is unknown. */
  interrupted?: boolean;
}

export interface RunState {
  readonly cell: string;
  readonly seed: number;
  recipeHash: string;
  status: 'pending' | 'running' | 'done' | 'failed';
  /** Child process id while running (a resumed sweep waits for a leftover child to exit). */
  pid?: number;
  attempts: Attempt[];
  error?: string;
}

export interface SweepState {
  readonly ablation: string;
  readonly file: string;
  runs: Record<string, RunState>;
  updatedAt?: string;
}

export class SweepStateFile {
  private chain: Promise<void> = Promise.resolve();
  constructor(readonly file: string, readonly state: SweepState) {}

  static load(file: string, ablation: string, specFile: string): SweepStateFile {
    let state: SweepState = { ablation, file: specFile, runs: {} };
    if (existsSync(file)) {
      try { state = { ...(JSON.parse(readFileSync(file, 'utf8')) as SweepState), ablation, file: specFile }; } catch { /* torn by a crash: start a fresh record */ }
    }
    return new SweepStateFile(file, state);
  }

  run(name: string, cell: string, seed: number, recipeHash: string): RunState {
    const r = this.state.runs[name] ??= { cell, seed, recipeHash, status: 'pending', attempts: [] };
    if (r.recipeHash !== recipeHash) { r.recipeHash = recipeHash; r.attempts = []; r.status = 'pending'; delete r.error; }
    return r;
  }

  /** Writes are queued: runs finishing together must not interleave on one temporary file. */
  save(): Promise<void> {
    this.chain = this.chain.then(() => writeJsonAtomic(this.file, { ...this.state, updatedAt: new Date().toISOString() }));
    return this.chain;
  }
}
