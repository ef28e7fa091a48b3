/**
 * Builds and loads facedistill's native kernel addon (core/native/fd_kernels.cc).
 *
 * No node-gyp and no download: the machine's own C++ compiler (g++ or clang++, or $CXX) compiles the one source file
 * against Node's N-API headers, with -march=native and threads. The result is cached in the package's .cache/native/
 * ($FACEDISTILL_NATIVE_CACHE, or the OS temp folder when read-only), keyed by a hash of the source, the flags, the
 * compiler and the CPU, so the first run pays a few seconds and later runs load it at once. Any failure returns a reason instead of throwing: the caller
 * falls back to wasm.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);

/** The addon's entry points (see fd_kernels.cc for the exact semantics). */
export interface NativeKernels {
  conv2d(x: Float32Array, w: Float32Array, y: Float32Array, geometry: Int32Array): void;
  conv2dBackpropInput(dy: Float32Array, w: Float32Array, dx: Float32Array, geometry: Int32Array): void;
  conv2dBackpropFilter(x: Float32Array, dy: Float32Array, dw: Float32Array, geometry: Int32Array): void;
  depthwise(x: Float32Array, w: Float32Array, y: Float32Array, geometry: Int32Array): void;
  depthwiseBackpropInput(dy: Float32Array, w: Float32Array, dx: Float32Array, geometry: Int32Array): void;
  depthwiseBackpropFilter(x: Float32Array, dy: Float32Array, dw: Float32Array, geometry: Int32Array): void;
  binary(op: number, a: Float32Array, b: Float32Array, out: Float32Array): void;
  /** dims = [rank, out shape…, a's strides…, b's strides…] (0 along broadcast axes; see broadcastDims in kernels.ts). */
  binaryBroadcast(op: number, a: Float32Array, b: Float32Array, out: Float32Array, dims: Int32Array): void;
  /** act: 0 linear, 1 relu, 2 relu6, 3 prelu, 4 leakyrelu, 5 elu, 6 sigmoid; bias / preluWeights: a scalar or whole rows of co. */
  conv2dFused(x: Float32Array, w: Float32Array, bias: Float32Array | null, preluWeights: Float32Array | null, y: Float32Array,
    geometry: Int32Array, act: number, leakyAlpha: number): void;
  depthwiseFused(x: Float32Array, w: Float32Array, bias: Float32Array | null, preluWeights: Float32Array | null, y: Float32Array,
    geometry: Int32Array, act: number, leakyAlpha: number): void;
  unary(op: number, x: Float32Array, out: Float32Array, param?: number): void;
  /** dims = [batch, M, N, K, transposeA, transposeB, aBatched, bBatched] */
  matmul(a: Float32Array, b: Float32Array, out: Float32Array, dims: Int32Array): void;
  /** MaxPool (max = 1) or AvgPool (0), NHWC; geometry as the convolutions'. */
  pool(x: Float32Array, out: Float32Array, geometry: Int32Array, max: number): void;
  /** out viewed as [outer, Σ inners], part i as [outer, inners[i]]. */
  concat(parts: Float32Array[], out: Float32Array, outer: number, inners: Int32Array): void;
  greater(a: Float32Array, b: Float32Array, out: Uint8Array): void;
  select(cond: Uint8Array, a: Float32Array, b: Float32Array, out: Float32Array): void;
  reduceSum(x: Float32Array, out: Float32Array, outer: number, mid: number, inner: number, scale: number): void;
  batchNorm(x: Float32Array, mean: Float32Array, variance: Float32Array, offset: Float32Array | null, scale: Float32Array | null, out: Float32Array, eps: number): void;
  batchNormStatsGrad(dy: Float32Array, x: Float32Array, mean: Float32Array, variance: Float32Array, scale: Float32Array | null, eps: number,
    dMean: Float32Array, dVariance: Float32Array, dScale: Float32Array, dOffset: Float32Array): void;
  prelu(x: Float32Array, alpha: Float32Array, out: Float32Array): void;
  preluGradInput(dy: Float32Array, x: Float32Array, alpha: Float32Array, dx: Float32Array): void;
  preluGradAlpha(dy: Float32Array, x: Float32Array, dAlpha: Float32Array): void;
  bnTrain(x: Float32Array, scale: Float32Array, offset: Float32Array, y: Float32Array, mean: Float32Array, variance: Float32Array, eps: number): void;
  bnTrainGradParams(dy: Float32Array, x: Float32Array, mean: Float32Array, variance: Float32Array, eps: number, dScale: Float32Array, dOffset: Float32Array): void;
  bnTrainGradInput(dy: Float32Array, x: Float32Array, scale: Float32Array, mean: Float32Array, variance: Float32Array,
    dScale: Float32Array, dOffset: Float32Array, eps: number, dx: Float32Array): void;
  bnPrelu(x: Float32Array, scale: Float32Array, offset: Float32Array, alpha: Float32Array, mean: Float32Array, variance: Float32Array,
    eps: number, z: Float32Array): void;
  bnPreluGrad(dz: Float32Array, x: Float32Array, scale: Float32Array, offset: Float32Array, alpha: Float32Array, mean: Float32Array,
    variance: Float32Array, eps: number, dx: Float32Array, dScale: Float32Array, dOffset: Float32Array, dAlpha: Float32Array): void;
  adamUpdate(value: Float32Array, m: Float32Array, v: Float32Array, g: Float32Array, newValue: Float32Array, newM: Float32Array,
    newV: Float32Array, scalars: Float32Array): void;
  /** Sets the thread count when given one; returns the count in use. */
  threads(n?: number): number;
  /** Vector width the addon was compiled for, in bits (512 = AVX-512). */
  simdBits(): number;
}

export type AddonResult =
  | { readonly ok: true; readonly kernels: NativeKernels; readonly file: string; readonly built: boolean; readonly detail: string }
  | { readonly ok: false; readonly why: string };

/** The package root: the nearest folder above this file whose package.json is facedistill's. */
function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pj = path.join(dir, 'package.json');
    if (fs.existsSync(pj) && (JSON.parse(fs.readFileSync(pj, 'utf8')) as { name?: string }).name === 'facedistill') return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error('facedistill package root not found');
    dir = up;
  }
}

function findHeaders(): string | undefined {
  const candidates = [
    process.env.FACEDISTILL_NODE_HEADERS,
    path.resolve(path.dirname(process.execPath), '..', 'include', 'node'),
    process.env.npm_config_nodedir && path.join(process.env.npm_config_nodedir, 'include', 'node'),
    '/usr/include/node',
    '/usr/local/include/node',
  ];
  return candidates.find((d): d is string => !!d && fs.existsSync(path.join(d, 'node_api.h')));
}

function findCompiler(): { cxx: string; version: string } | undefined {
  for (const cxx of [process.env.CXX, 'g++', 'c++', 'clang++'].filter((c): c is string => !!c)) {
    const r = spawnSync(cxx, ['--version'], { encoding: 'utf8' });
    if (r.status === 0) return { cxx, version: r.stdout.split('\n')[0]! };
  }
  return undefined;
}

/** CPU identity for the cache key: a -march=native build must not be loaded on another CPU. */
function cpuKey(): string {
  try {
    const info = fs.readFileSync('/proc/cpuinfo', 'utf8');
    const pick = (k: string) => info.match(new RegExp(`^${k}\\s*:\\s*(.*)$`, 'm'))?.[1] ?? '';
    return `${pick('model name')}|${pick('flags')}`;
  } catch {
    return `${os.cpus()[0]?.model ?? ''}|${os.arch()}`;
  }
}

const FLAG_SETS: readonly (readonly string[])[] = [
  ['-O3', '-march=native', '-ffp-contract=fast', '-fno-trapping-math', '-pthread'],
  ['-O3', '-pthread'], // a compiler that rejects -march=native: portable SIMD only
];

let loaded: AddonResult | undefined;

/** Loads the addon, compiling it first if no cached build matches. Set FACEDISTILL_NATIVE=0 to disable. */
export function loadNativeKernels(): AddonResult {
  if (loaded) return loaded;
  if (process.env.FACEDISTILL_NATIVE === '0') return (loaded = { ok: false, why: 'disabled by FACEDISTILL_NATIVE=0' });
  if (process.platform === 'win32') return (loaded = { ok: false, why: 'native kernels are built for Linux/macOS only' });
  try {
    const root = packageRoot();
    const src = path.join(root, 'core', 'native', 'fd_kernels.cc');
    if (!fs.existsSync(src)) return (loaded = { ok: false, why: `source ${src} missing` });
    const headers = findHeaders();
    if (!headers) return (loaded = { ok: false, why: "Node's N-API headers (node_api.h) not found; set FACEDISTILL_NODE_HEADERS" });
    const cc = findCompiler();
    if (!cc) return (loaded = { ok: false, why: 'no C++ compiler (g++, c++, clang++ or $CXX)' });
    const source = fs.readFileSync(src);
    const cacheDir = [process.env.FACEDISTILL_NATIVE_CACHE, path.join(root, '.cache', 'native'), path.join(os.tmpdir(), 'facedistill-native')]
      .filter((d): d is string => !!d)
      .find((d) => { try { fs.mkdirSync(d, { recursive: true }); fs.accessSync(d, fs.constants.W_OK); return true; } catch { return false; } });
    if (!cacheDir) return (loaded = { ok: false, why: 'no writable cache folder for the native build' });
    const errors: string[] = [];
    for (const flags of FLAG_SETS) {
      const key = createHash('sha256').update(source).update(flags.join(' ')).update(cc.version).update(cpuKey())
        .update(process.versions.napi ?? '').digest('hex').slice(0, 16);
      const file = path.join(cacheDir, `fd_kernels-${key}.node`);
      let built = false;
      if (!fs.existsSync(file)) {
        const tmp = `${file}.${process.pid}.tmp`;
        const r = spawnSync(cc.cxx, [...flags, '-std=c++17', '-fPIC', '-shared', '-DNODE_GYP_MODULE_NAME=fd_kernels',
          '-I', headers, src, '-o', tmp], { encoding: 'utf8' });
        if (r.status !== 0) {
          errors.push(`${cc.cxx} ${flags.join(' ')}: ${(r.stderr || r.error?.message || '').split('\n').find((l) => l.includes('error')) ?? `exit ${r.status}`}`);
          fs.rmSync(tmp, { force: true });
          continue;
        }
        fs.renameSync(tmp, file); // atomic: parallel test processes may build at once
        built = true;
      }
      try {
        const kernels = require(file) as NativeKernels;
        const detail = `${cc.version.split(' ').slice(0, 3).join(' ')} ${flags.join(' ')}, ${kernels.simdBits()}-bit vectors, ${kernels.threads()} threads`;
        return (loaded = { ok: true, kernels, file, built, detail });
      } catch (e) {
        errors.push(`loading ${file}: ${(e as Error).message.split('\n')[0]}`);
      }
    }
    return (loaded = { ok: false, why: `native build failed (${errors.join('; ')})` });
  } catch (e) {
    return (loaded = { ok: false, why: `native build failed (${(e as Error).message.split('\n')[0]})` });
  }
}
