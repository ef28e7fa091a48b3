import { existsSync } from 'node:fs';
import { readdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { ensureDir, removeQuiet, writeJsonAtomic } from '../util/fs.js';
import type { JsonValue } from '../util/json.js';

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

/**
 * Checkpoints live in `<run>/checkpoints/<stage>-<step>/` (tensors.bin + state.json), written
 * under a temporary name and renamed, then `latest.json` is replaced atomically: a kill at
 * any moment leaves the previous checkpoint intact.
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
    await writeFile(path.join(tmp, 'tensors.bin'), Buffer.concat(chunks));
    await writeFile(path.join(tmp, 'state.json'), JSON.stringify({ ...ck.state, tensors: entries }));
    await removeQuiet(final);
    await rename(tmp, final);
    await writeJsonAtomic(path.join(this.dir, 'latest.json'), { checkpoint: name });
    await this.prune(name);
    return final;
  }

  private async prune(current: string): Promise<void> {
    const all = (await readdir(this.dir)).filter((d) => /^\d\d-/.test(d)).sort();
    const old = all.filter((d) => d !== current).slice(0, Math.max(0, all.length - this.keep));
    for (const d of old) await removeQuiet(path.join(this.dir, d));
    for (const d of (await readdir(this.dir)).filter((d) => d.startsWith('.tmp-'))) await removeQuiet(path.join(this.dir, d));
  }

  async latest(): Promise<Checkpoint | undefined> {
    const ptr = path.join(this.dir, 'latest.json');
    if (!existsSync(ptr)) return undefined;
    const { checkpoint } = JSON.parse(await readFile(ptr, 'utf8')) as { checkpoint: string };
    return this.load(path.join(this.dir, checkpoint));
  }

  async load(dir: string): Promise<Checkpoint> {
    const meta = JSON.parse(await readFile(path.join(dir, 'state.json'), 'utf8')) as CheckpointState & { tensors: TensorEntry[] };
    const buf = await readFile(path.join(dir, 'tensors.bin'));
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
