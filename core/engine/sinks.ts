import { existsSync } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import cliProgress from 'cli-progress';
import type { RunEvent } from '../interfaces/events.js';
import type { Sink } from '../interfaces/sink.js';
import { writeFileAtomic } from '../util/fs.js';

/** metrics.jsonl: one line per step (named loss terms, lr, images/s) plus rollback and evaluation events (`event`). */
export class MetricsJsonlSink implements Sink {
  private buffer: string[] = [];
  constructor(private readonly file: string) {}

  /**
   * On resume, drop what came after the checkpoint so the file matches an uninterrupted run.
   * A line that is not JSON (the torn end of a write cut short by a kill) is dropped too; the
   * count of such lines is returned.
   */
  async truncateAfter(stageIndex: number, stages: readonly string[], step: number): Promise<number> {
    if (!existsSync(this.file)) return 0;
    let torn = 0;
    const keep = (await readFile(this.file, 'utf8')).split('\n').filter((l) => l.trim() !== '').filter((l) => {
      let r: { stage: string; step: number };
      try { r = JSON.parse(l) as typeof r; } catch { torn++; return false; }
      const si = stages.indexOf(r.stage);
      return si < stageIndex || (si === stageIndex && r.step <= step);
    });
    await writeFileAtomic(this.file, keep.map((l) => l + '\n').join(''));
    return torn;
  }

  async write(e: RunEvent): Promise<void> {
    if (e.type === 'step') {
      this.buffer.push(JSON.stringify({ stage: e.stage, step: e.step, lr: e.lr, ...e.terms, imagesPerSec: round(e.imagesPerSec), elapsedSec: round(e.elapsedSec) }));
    } else if (e.type === 'eval-point') {
      const p = e.point;
      this.buffer.push(JSON.stringify({
        stage: e.stage, step: e.step, event: 'eval', model: p.model, imagesSeen: p.imagesSeen, elapsedSec: round(p.elapsedSec),
        accuracy: p.accuracy, std: p.std, tarAtFar: p.tarAtFar, auc: p.auc, evalSec: round(p.evalSec),
      }));
    } else if (e.type === 'rollback') {
      this.buffer.push(JSON.stringify({ stage: e.stage, step: e.step, event: 'rollback', term: e.term, toStep: e.toStep, lrScale: e.lrScale }));
    }
    // The engine flushes before each checkpoint (durable()); these events end a run or record a rollback.
    if (e.type === 'stage-end' || e.type === 'run-end' || e.type === 'rollback') await this.flush();
  }

  /** Appends the buffered rows; with `sync`, also to the disk (before a checkpoint names their step as done). */
  async flush(sync = false): Promise<void> {
    if (this.buffer.length === 0 && !sync) return;
    const lines = this.buffer.map((l) => l + '\n').join('');
    this.buffer = [];
    const fh = await open(this.file, 'a');
    try {
      if (lines) await fh.appendFile(lines);
      if (sync) await fh.sync();
    } finally {
      await fh.close();
    }
  }

  /** Every row so far on disk: called before a checkpoint is written, so a resume never misses rows. */
  async durable(): Promise<void> { await this.flush(true); }

  async close(): Promise<void> { await this.flush(); }
}

const round = (x: number) => Math.round(x * 1000) / 1000;

/** The terminal progress bar: step, ETA, each loss term, images/s. */
export class ProgressSink implements Sink {
  private bar?: cliProgress.SingleBar;
  constructor(private readonly enabled: boolean) {}

  write(e: RunEvent): void {
    if (!this.enabled) return;
    if (e.type === 'stage-start') {
      this.bar = new cliProgress.SingleBar({
        format: `${e.stage} [{bar}] {value}/{total} | ETA {eta_formatted} | {terms} | {ips} img/s`,
        hideCursor: false, stream: process.stderr, etaBuffer: 20, noTTYOutput: true, notTTYSchedule: 5000,
      }, cliProgress.Presets.shades_classic);
      this.bar.start(e.steps, e.fromStep, { terms: '', ips: '-' });
    } else if (e.type === 'step') {
      const terms = Object.entries(e.terms).map(([k, v]) => `${k} ${v.toPrecision(4)}`).join(' ');
      this.bar?.update(e.step, { terms, ips: e.imagesPerSec.toFixed(1) });
    } else if (e.type === 'stage-end') {
      this.bar?.stop();
      this.bar = undefined;
    }
  }

  async close(): Promise<void> { this.bar?.stop(); }
}
