import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { open, readdir, readFile, rename } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { ensureDir, removeQuiet, writeJsonAtomic } from '../util/fs.js';
import type { JsonValue } from '../util/json.js';
import { RunError } from './errors.js';
import { faultPoint } from './fault-points.js';

export interface NamedArray {
  readonly name: string;
  readonly dtype: tf.DataType;
  readonly shape: readonly number[];
  readonly data: Float32Array | Int32Array;
}

/** Everything needed to continue a run exactly where it stopped. */
export interface CheckpointState {
  readonly recipeHash: string;
  readonly stageIndex: number;
  readonly stage: string;
  /** Steps of the stage done. */
  readonly step: number;
  readonly lrScale: number;
  readonly rng: JsonValue;
  readonly data: JsonValue;
  readonly strategy: JsonValue;
  readonly elapsedSec: number;
  /**
   * Optimiser scalars that `setWeights` would recompute differently: Adam's running β^t
   * products (tfjs recomputes them with pow(), an uninterrupted run multiplies step by step,
   * and the two differ in the last bit at some steps).
   */
  readonly optimizerScalars?: Readonly<Record<string, number>>;
}

export interface Checkpoint {
  readonly state: CheckpointState;
  readonly tensors: Readonly<Record<'student' | 'strategy' | 'optimizer', readonly NamedArray[]>>;
}

interface TensorEntry { group: string; name: string; dtype: tf.DataType; shape: number[]; offset: number; length: number }

export async function toNamedArrays(named: readonly { name: string; tensor: tf.Tensor }[]): Promise<NamedArray[]> {
  return Promise.all(named.map(async ({ name, tensor }) => ({
    name, dtype: tensor.dtype, shape: tensor.shape, data: (await tensor.data()) as Float32Array | Int32Array,
  })));
}

/** A checkpoint folder that fails verification: which one and why. */
export class CheckpointCorruptError extends Error {
  constructor(readonly checkpoint: string, readonly reason: string) {
    super(`checkpoint ${checkpoint}: ${reason}`);
  }
}

/** manifest.json of a checkpoint: the byte length and SHA-256 of each file, written last. */
interface CheckpointManifest { format: 1; files: Record<string, { bytes: number; sha256: string }> }

const FILES = ['tensors.bin', 'state.json'] as const;
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

async function writeSynced(file: string, data: Uint8Array | string): Promise<void> {
  const fh = await open(file, 'w');
  try { await fh.writeFile(data); await fh.sync(); } finally { await fh.close(); }
}

/**
 * Checkpoints live in `<run>/checkpoints/<stage>-<step>/`: tensors.bin, state.json and
 * manifest.json (each file's length and SHA-256), written under a temporary name, synced and
 * renamed; then `latest.json` is replaced atomically. Loading verifies the manifest, and
 * `latest()` returns the newest checkpoint that verifies: a kill at any moment, or a damaged
 * file, leaves an earlier good checkpoint to resume from (`keep` ≥ 2 are kept).
 */
export class CheckpointStore {
  constructor(private readonly dir: string, private readonly keep = 2) {}

  async save(ck: Checkpoint): Promise<string> {
    const name = `${String(ck.state.stageIndex).padStart(2, '0')}-${ck.state.stage}-${String(ck.state.step).padStart(7, '0')}`;
    const final = path.join(this.dir, name);
    const tmp = path.join(this.dir, `.tmp-${name}-${process.pid}`);
    await removeQuiet(tmp);
    await ensureDir(tmp);
    const entries: TensorEntry[] = [];
    const chunks: Uint8Array[] = [];
    let offset = 0;
    for (const [group, arrs] of Object.entries(ck.tensors)) {
      for (const a of arrs) {
        const bytes = new Uint8Array(a.data.buffer, a.data.byteOffset, a.data.byteLength);
        entries.push({ group, name: a.name, dtype: a.dtype, shape: [...a.shape], offset, length: bytes.byteLength });
        chunks.push(bytes);
        offset += bytes.byteLength;
      }
    }
    const contents: Record<(typeof FILES)[number], Uint8Array> = {
      'tensors.bin': Buffer.concat(chunks),
      'state.json': Buffer.from(JSON.stringify({ ...ck.state, tensors: entries })),
    };
    const manifest: CheckpointManifest = { format: 1, files: {} };
    const step = ck.state.step;
    for (const f of FILES) {
      await writeSynced(path.join(tmp, f), contents[f]);
      manifest.files[f] = { bytes: contents[f].byteLength, sha256: sha256(contents[f]) };
      faultPoint(f === 'tensors.bin' ? 'checkpoint:tensors-written' : 'checkpoint:state-written', step);
    }
    await writeSynced(path.join(tmp, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
    faultPoint('checkpoint:manifest-written', step);
    await removeQuiet(final);
    await rename(tmp, final);
    faultPoint('checkpoint:renamed', step);
    await writeJsonAtomic(path.join(this.dir, 'latest.json'), { checkpoint: name });
    faultPoint('checkpoint:latest-written', step);
    await this.prune(name);
    return final;
  }

  private async prune(current: string): Promise<void> {
    const all = (await readdir(this.dir)).filter((d) => /^\d\d-/.test(d)).sort();
    const old = all.filter((d) => d !== current).slice(0, Math.max(0, all.length - this.keep));
    for (const d of old) await removeQuiet(path.join(this.dir, d));
    for (const d of (await readdir(this.dir)).filter((d) => d.startsWith('.tmp-'))) await removeQuiet(path.join(this.dir, d));
  }

  /**
   * The newest checkpoint that verifies (by name: stage index, then step), or undefined where
   * none was ever written. Each one skipped is passed to `onSkip`. Where checkpoints exist but
   * none verifies, a RunError says so and how to start again.
   */
  async latest(onSkip?: (e: CheckpointCorruptError) => void): Promise<Checkpoint | undefined> {
    if (!existsSync(this.dir)) return undefined;
    const names = (await readdir(this.dir)).filter((d) => /^\d\d-/.test(d)).sort().reverse();
    const failures: CheckpointCorruptError[] = [];
    for (const n of names) {
      try {
        return await this.load(path.join(this.dir, n));
      } catch (e) {
        if (!(e instanceof CheckpointCorruptError)) throw e;
        failures.push(e);
        onSkip?.(e);
      }
    }
    if (names.length === 0 && !existsSync(path.join(this.dir, 'latest.json'))) return undefined;
    const why = failures.length > 0 ? failures.map((f) => f.message).join('; ') : 'latest.json is there but no checkpoint folder';
    throw new RunError(`no checkpoint in ${this.dir} can be trusted (${why}); run again with --fresh to move this run aside and start over`);
  }

  /** Reads and verifies one checkpoint folder; CheckpointCorruptError says what is wrong. */
  async load(dir: string): Promise<Checkpoint> {
    const name = path.basename(dir);
    const read = async (f: string): Promise<Buffer> => {
      try { return await readFile(path.join(dir, f)); } catch (e) { throw new CheckpointCorruptError(name, `${f} cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`); }
    };
    const files: Record<string, Buffer> = {};
    for (const f of FILES) files[f] = await read(f);
    if (existsSync(path.join(dir, 'manifest.json'))) {
      let m: CheckpointManifest;
      try { m = JSON.parse((await read('manifest.json')).toString('utf8')) as CheckpointManifest; } catch { throw new CheckpointCorruptError(name, 'manifest.json is not JSON'); }
      for (const f of FILES) {
        const want = m.files?.[f];
        if (!want) throw new CheckpointCorruptError(name, `manifest.json does not list ${f}`);
        if (files[f]!.byteLength !== want.bytes) throw new CheckpointCorruptError(name, `${f} has ${files[f]!.byteLength} bytes, the manifest says ${want.bytes}`);
        if (sha256(files[f]!) !== want.sha256) throw new CheckpointCorruptError(name, `${f} does not match its SHA-256 in the manifest`);
      }
    } // else a checkpoint written before manifests: checked for shape below only
    let meta: CheckpointState & { tensors: TensorEntry[] };
    try { meta = JSON.parse(files['state.json']!.toString('utf8')) as typeof meta; } catch { throw new CheckpointCorruptError(name, 'state.json is not JSON'); }
    if (!Array.isArray(meta?.tensors) || typeof meta.step !== 'number') throw new CheckpointCorruptError(name, 'state.json lacks its step or tensor list');
    const buf = files['tensors.bin']!;
    const total = meta.tensors.reduce((n, e) => n + e.length, 0);
    if (total !== buf.byteLength) throw new CheckpointCorruptError(name, `tensors.bin has ${buf.byteLength} bytes, state.json lists ${total}`);
    const tensors: Record<string, NamedArray[]> = { student: [], strategy: [], optimizer: [] };
    for (const e of meta.tensors) {
      const bytes = buf.buffer.slice(buf.byteOffset + e.offset, buf.byteOffset + e.offset + e.length);
      const data = e.dtype === 'int32' ? new Int32Array(bytes) : new Float32Array(bytes);
      (tensors[e.group] ??= []).push({ name: e.name, dtype: e.dtype, shape: e.shape, data });
    }
    const { tensors: _t, ...state } = meta;
    return { state, tensors: tensors as unknown as Checkpoint['tensors'] };
  }
}
