/**
 * Recycled output buffers for the `cpu-native` backend.
 *
 * A training step allocates gigabytes of activations and gradients (4.5 GB per 112 px MobileFaceNet step at batch
 * 32). A fresh buffer costs a page fault per 4 KiB on first touch, and that was as much time as the kernels that fill
 * them: writing 6.4 MB into a new array took 1.1 ms here, into a reused one 0.13 ms. So the big outputs of the native
 * kernels come from a pool and go back to it when their tensor is disposed.
 *
 * A buffer is recycled only while nothing outside the backend can still see it: the pool owns the buffers it made;
 * one that is read out (`dataSync`, `data`), written under a second data id (a reference kernel returning an input's
 * values or a view of them) or never disposed is left to the garbage collector instead.
 */
import type * as tf from '@tensorflow/tfjs';

/** Below this many floats a fresh array is cheap (and small tensors are the ones users read). */
const MIN_FLOATS = 16384;

/** What the pool needs from MathBackendCPU (its storage map and the four methods it wraps). */
export interface PooledStorage {
  data: { get(dataId: tf.DataId): { values: unknown } | undefined; has(dataId: tf.DataId): boolean };
  write(values: unknown, shape: number[], dtype: tf.DataType): tf.DataId;
  readSync(dataId: tf.DataId): unknown;
  read(dataId: tf.DataId): Promise<unknown>;
  disposeData(dataId: tf.DataId, force?: boolean): boolean;
}

export class BufferPool {
  private readonly free = new Map<number, Float32Array[]>();
  /** Buffers this pool made → how many live data ids hold them. */
  private readonly owners = new WeakMap<ArrayBuffer, number>();
  private readonly exposed = new WeakSet<ArrayBuffer>();
  private pooledBytes = 0;
  /** Counters for tests and the bench. */
  readonly stats = { made: 0, reused: 0, recycled: 0, dropped: 0 };

  constructor(readonly capBytes: number) {}

  /** An array of n floats with undefined contents (the caller overwrites all of it). */
  take(n: number): Float32Array {
    if (n < MIN_FLOATS) return new Float32Array(n);
    const list = this.free.get(n);
    const a = list?.pop();
    if (a) {
      this.touch(n, list!);
      this.pooledBytes -= a.byteLength;
      this.stats.reused++;
      return a;
    }
    const buf = Buffer.allocUnsafeSlow(n * 4); // its own ArrayBuffer: allocUnsafeSlow never slices a shared slab
    const fresh = new Float32Array(buf.buffer, buf.byteOffset, n);
    this.owners.set(fresh.buffer as ArrayBuffer, 0);
    this.stats.made++;
    return fresh;
  }

  /** Empties the pool (its arrays go to the garbage collector). */
  clear(): void {
    this.free.clear();
    this.pooledBytes = 0;
  }

  get bytes(): number { return this.pooledBytes; }

  /** Wraps a cpu-storage backend instance so that disposed outputs of `take` come back here. */
  attach(b: PooledStorage): void {
    const bufferOf = (v: unknown) => (ArrayBuffer.isView(v) ? (v.buffer as ArrayBuffer) : undefined);
    const { write, readSync, read, disposeData } = b;
    b.write = (values, shape, dtype) => {
      const buf = bufferOf(values);
      const n = buf && this.owners.get(buf);
      if (buf && n !== undefined) {
        this.owners.set(buf, n + 1);
        // A second holder, or a view of part of it: its lifetime is no longer one tensor's.
        if (n > 0 || (values as ArrayBufferView).byteLength !== buf.byteLength) this.exposed.add(buf);
      }
      return write.call(b, values, shape, dtype);
    };
    const expose = (dataId: tf.DataId) => {
      const buf = bufferOf(b.data.get(dataId)?.values);
      if (buf && this.owners.has(buf)) this.exposed.add(buf);
    };
    b.readSync = (dataId) => { expose(dataId); return readSync.call(b, dataId); };
    b.read = (dataId) => { expose(dataId); return read.call(b, dataId); };
    b.disposeData = (dataId, force) => {
      const values = b.data.has(dataId) ? b.data.get(dataId)?.values : undefined;
      const released = disposeData.call(b, dataId, force);
      const buf = bufferOf(values);
      const n = buf && this.owners.get(buf);
      if (released && b.data.has(dataId) === false && buf && n !== undefined && n > 0) {
        this.owners.set(buf, n - 1);
        if (n === 1 && !this.exposed.has(buf)) this.give(values as Float32Array);
      }
      return released;
    };
  }

  /** Marks a size as just used: the map's order is least recently used first. */
  private touch(n: number, list: Float32Array[]): void {
    this.free.delete(n);
    this.free.set(n, list);
  }

  private give(a: Float32Array): void {
    if (a.byteLength > this.capBytes) {
      this.stats.dropped++;
      return;
    }
    // Full: evict buffers of the least recently used sizes (a run whose shapes change, e.g. a second stage at another
    // resolution, must not keep the first stage's buffers forever).
    for (const [n, list] of this.free) {
      if (this.pooledBytes + a.byteLength <= this.capBytes) break;
      if (n === a.length) continue;
      while (list.length > 0 && this.pooledBytes + a.byteLength > this.capBytes) {
        this.pooledBytes -= list.pop()!.byteLength;
        this.stats.dropped++;
      }
      if (list.length === 0) this.free.delete(n);
    }
    if (this.pooledBytes + a.byteLength > this.capBytes) {
      this.stats.dropped++;
      return;
    }
    this.owners.set(a.buffer as ArrayBuffer, 0);
    let list = this.free.get(a.length);
    if (!list) list = [];
    this.touch(a.length, list);
    list.push(a);
    this.pooledBytes += a.byteLength;
    this.stats.recycled++;
  }
}
