/**
 * Which kernels of `cpu-native` ran natively and which ran tfjs's pure-JS cpu kernel, per kernel name, with their
 * milliseconds; and the one-line warnings for the slow ones.
 *
 * A kernel the addon implements but declines for one case (a dilation, an activation, a dtype) says so once per
 * (kernel, reason) on stderr the first time it happens with an output of 16K elements or more (or a slow call):
 * `cpu-native: FusedDepthwiseConv2D with activation 'xyz' runs on tfjs's pure-JS kernel (slow)`. A kernel the addon does not implement at all (Reshape, Slice, CropAndResize, …) is
 * counted as a fallback too; it is reported once per name only when one call took at least UNCOVERED_SLOW_MS, since most of
 * them are views and copies that cost nothing. FACEDISTILL_NATIVE_QUIET=1 silences the lines (the counts remain).
 */

/** Per kernel name: calls and milliseconds on each path; reasons: "kernel: reason" → calls. */
export interface NativeKernelStats {
  readonly native: Map<string, number>;
  readonly fallback: Map<string, number>;
  readonly nativeMs: Map<string, number>;
  readonly fallbackMs: Map<string, number>;
  readonly reasons: Map<string, number>;
}

/** A pure-JS call at least this long (ms) of a kernel with no native implementation is reported (once per name). */
export const SLOW_MS = 25;
/**
 * A kernel with no native implementation is reported when one call takes this long: a one-off resize of a photo or
 * a 30 ms clip is not worth a line on every run, a 100 ms gather inside every training step is.
 */
export const UNCOVERED_SLOW_MS = 100;

const fresh = (): NativeKernelStats => ({ native: new Map(), fallback: new Map(), nativeMs: new Map(), fallbackMs: new Map(), reasons: new Map() });
let stats = fresh();
const warned = new Set<string>();
/** Every line printed so far (tests check the wording without capturing stderr). */
const lines: string[] = [];

const bump = (m: Map<string, number>, k: string, by: number) => m.set(k, (m.get(k) ?? 0) + by);

/** A snapshot of the counters since the process started (or the last reset). */
export function nativeKernelStats(): NativeKernelStats {
  return { native: new Map(stats.native), fallback: new Map(stats.fallback), nativeMs: new Map(stats.nativeMs),
    fallbackMs: new Map(stats.fallbackMs), reasons: new Map(stats.reasons) };
}

/** Zeroes the counters (the warnings already printed stay printed: one per process). */
export function resetNativeKernelStats(): void {
  stats = fresh();
}

/** The warning lines printed so far in this process. */
export function nativeFallbackWarnings(): readonly string[] {
  return [...lines];
}

export function countNative(name: string, ms: number): void {
  bump(stats.native, name, 1);
  bump(stats.nativeMs, name, ms);
}

function warn(key: string, line: string): void {
  if (warned.has(key)) return;
  warned.add(key);
  lines.push(line);
  if (process.env.FACEDISTILL_NATIVE_QUIET !== '1') process.stderr.write(`${line}\n`);
}

/** Outputs smaller than this (elements) that a native kernel declines are counted but not reported: index and shape
 * arithmetic on int32 scalars and the like, where the pure-JS kernel costs microseconds. */
export const REPORT_MIN_ELEMENTS = 16384;

/**
 * A native kernel declined this case: `reason` completes "cpu-native: <name> <reason> runs on …". Reported once per
 * (kernel, reason) when the output has at least REPORT_MIN_ELEMENTS elements or the call took SLOW_MS.
 */
export function countDeclined(name: string, reason: string, ms: number, outputElements: number): void {
  bump(stats.fallback, name, 1);
  bump(stats.fallbackMs, name, ms);
  bump(stats.reasons, `${name}: ${reason}`, 1);
  if (outputElements >= REPORT_MIN_ELEMENTS || ms >= SLOW_MS) warn(`${name}\u0000${reason}`, `cpu-native: ${name} ${reason} runs on tfjs's pure-JS kernel (slow)`);
}

/** A kernel with no native implementation ran on the pure-JS kernel. */
export function countUncovered(name: string, ms: number, shapes: () => string): void {
  bump(stats.fallback, name, 1);
  bump(stats.fallbackMs, name, ms);
  if (ms >= UNCOVERED_SLOW_MS) warn(`${name}\u0000uncovered`, `cpu-native: ${name} has no native kernel and runs on tfjs's pure-JS kernel (slow: one call on ${shapes()} took ${ms.toFixed(0)} ms)`);
}
