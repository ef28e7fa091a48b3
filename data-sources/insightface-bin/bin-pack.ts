// The insightface `.bin` verification pack (strategy-specs 7.3): a pickle of
// (bins, issame_list); pair i = (bins[2i], bins[2i+1]), same = issame_list[i]. This module turns
// the unpickled value into JPEG byte views and labels, and rejects anything else with the file and
// the pickle byte offset named.
import { describe, PickleError, PyGlobal, PyObject, PyTuple, unpickle, type PickleValue, type Unpickled } from './pickle.js';

export interface BinPack {
  /** Encoded images (JPEG bytes as stored), 2 per pair. Views into the file buffer. */
  readonly images: readonly Uint8Array[];
  readonly issame: readonly boolean[];
}

const MULTIARRAY = new Set(['numpy.core.multiarray', 'numpy._core.multiarray']);
const NUMERIC = new Set(['numpy.core.numeric', 'numpy._core.numeric']);
const LATIN1 = new Set(['latin1', 'latin-1', 'iso-8859-1', 'iso8859-1']);

class PackError extends Error {}

/** Parses a pack held in memory; `file` is only used in messages. */
export function parseBinPack(buf: Uint8Array, file: string): BinPack {
  let u: Unpickled;
  try {
    u = unpickle(buf);
  } catch (e) {
    if (e instanceof PickleError) throw new Error(`${file}: ${e.message}`);
    throw e;
  }
  const where = (v: PickleValue, path: string, parent?: PickleValue) => {
    const off = u.offsetOf(v) ?? (parent === undefined ? undefined : u.offsetOf(parent));
    return `${file}: ${path}${off === undefined ? '' : ` (pickle byte offset ${off})`}`;
  };
  const top = u.value;
  const pair = top instanceof PyTuple ? top.items : Array.isArray(top) ? top : undefined;
  if (!pair || pair.length !== 2) throw new Error(`${where(top, 'top level')}: expected the 2-tuple (bins, issame_list), found ${describe(top)}`);
  const [bins, same] = pair as [PickleValue, PickleValue];
  const binList = sequence(bins);
  if (!binList) throw new Error(`${where(bins, 'bins')}: expected a list of encoded images, found ${describe(bins)}`);
  const sameList = sequence(same);
  if (!sameList) throw new Error(`${where(same, 'issame_list')}: expected a list of booleans, found ${describe(same)}`);

  const images = binList.map((el, i) => {
    try {
      return imageBytes(el);
    } catch (e) {
      if (e instanceof PackError) throw new Error(`${where(el, `bins[${i}]`, bins)}: ${e.message}`);
      throw e;
    }
  });
  const issame = sameList.map((v, i) => {
    if (typeof v !== 'boolean') throw new Error(`${where(v, `issame_list[${i}]`, same)}: expected a bool, found ${describe(v)}`);
    return v;
  });
  if (images.length !== 2 * issame.length) {
    throw new Error(`${file}: ${images.length} images but ${issame.length} labels (a pack holds 2 images per pair)`);
  }
  return { images, issame };
}

function sequence(v: PickleValue): readonly PickleValue[] | undefined {
  return Array.isArray(v) ? v : v instanceof PyTuple ? v.items : undefined;
}

function isGlobal(v: PickleValue, modules: ReadonlySet<string>, name: string): boolean {
  return v instanceof PyGlobal && modules.has(v.module) && v.name === name;
}

/** bytes / Python-2 str / bytearray, or Python 3 bytes pickled at protocol < 3 as _codecs.encode(str, 'latin1'). */
function byteString(v: PickleValue): Uint8Array | undefined {
  if (v instanceof Uint8Array) return v;
  if (v instanceof PyObject && isGlobal(v.callable, new Set(['_codecs']), 'encode')) {
    const [s, enc] = v.args.items;
    if (typeof s !== 'string' || typeof enc !== 'string' || !LATIN1.has(enc.toLowerCase())) {
      throw new PackError(`_codecs.encode with unexpected arguments (${v.args.items.map(describe).join(', ')})`);
    }
    const out = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c > 0xff) throw new PackError(`_codecs.encode: character U+${c.toString(16)} at ${i} is not latin-1`);
      out[i] = c;
    }
    return out;
  }
  return undefined;
}

/** 'u1' written as a str (Python 3) or a bytes str (Python 2 packs read with encoding='bytes'). */
function textOf(v: PickleValue): string | undefined {
  if (typeof v === 'string') return v;
  if (v instanceof Uint8Array && v.length < 64) return String.fromCharCode(...v);
  return undefined;
}

function checkUint8Dtype(d: PickleValue): void {
  if (!(d instanceof PyObject) || !isGlobal(d.callable, new Set(['numpy']), 'dtype')) {
    throw new PackError(`numpy array with an unexpected dtype object (${describe(d)})`);
  }
  const code = textOf(d.args.items[0] ?? null);
  if (code !== 'u1' && code !== '|u1' && code !== 'uint8') throw new PackError(`numpy array of dtype '${code ?? describe(d.args.items[0] ?? null)}', expected uint8 ('u1')`);
}

function checkShape(shape: PickleValue, n: number): void {
  const dims = shape instanceof PyTuple ? shape.items : undefined;
  if (!dims || !dims.every((x) => typeof x === 'number' && Number.isInteger(x) && x >= 0)) {
    throw new PackError(`numpy array shape is not a tuple of ints (${describe(shape)})`);
  }
  const ds = dims as number[];
  const size = ds.reduce((a, b) => a * b, 1);
  if (size !== n) throw new PackError(`numpy array shape (${ds.join(', ')}) holds ${size} elements but the data has ${n} bytes`);
  // With at most one dimension above 1, C and Fortran order give the same byte stream.
  if (ds.filter((x) => x > 1).length > 1) throw new PackError(`numpy array shape (${ds.join(', ')}) is not a vector of JPEG bytes`);
}

/** An image element: bytes / Python-2 str, or a numpy uint8 array (protocol ≤ 4 _reconstruct + BUILD, protocol 5 _frombuffer). */
function imageBytes(v: PickleValue): Uint8Array {
  const direct = byteString(v);
  if (direct) return direct;
  if (v instanceof PyObject && isGlobal(v.callable, MULTIARRAY, '_reconstruct')) {
    const [cls] = v.args.items;
    if (!isGlobal(cls ?? null, new Set(['numpy']), 'ndarray')) throw new PackError(`_reconstruct of ${describe(cls ?? null)}, expected numpy.ndarray`);
    const st = v.state;
    if (!(st instanceof PyTuple) || st.items.length !== 5 || st.items[0] !== 1) {
      throw new PackError(`numpy array without the BUILD state (1, shape, dtype, is_fortran, raw) (found ${st === undefined ? 'no BUILD' : describe(st)})`);
    }
    const [, shape, dtype, , raw] = st.items as [PickleValue, PickleValue, PickleValue, PickleValue, PickleValue];
    checkUint8Dtype(dtype);
    const data = byteString(raw);
    if (!data) throw new PackError(`numpy array raw data is ${describe(raw)}, expected bytes`);
    checkShape(shape, data.length);
    return data;
  }
  if (v instanceof PyObject && isGlobal(v.callable, NUMERIC, '_frombuffer')) {
    // numpy's protocol-5 form: _frombuffer(buffer, dtype, shape, order), the buffer in-band.
    const [raw, dtype, shape] = v.args.items as [PickleValue, PickleValue, PickleValue];
    const data = byteString(raw ?? null);
    if (!data) throw new PackError(`numpy _frombuffer data is ${describe(raw ?? null)}, expected bytes (out-of-band buffers are not supported)`);
    checkUint8Dtype(dtype ?? null);
    checkShape(shape ?? null, data.length);
    return data;
  }
  throw new PackError(`expected bytes, a Python-2 str or a numpy uint8 array, found ${describe(v)}`);
}
