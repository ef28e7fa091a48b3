// A small, strict pickle reader: just the opcodes the insightface `.bin` packs use
// (strategy-specs 7.3), plus the text opcodes of protocols 0/1 (LIST, PUT, GET, UNICODE,
// STRING) and the in-band buffer forms of protocol 5 (BYTEARRAY8), so packs written by Python 2
// or 3 at any protocol load. Opcode bytes and semantics follow CPython's Lib/pickle.py and
// Lib/pickletools.py (format documentation only). Nothing is ever called: globals stay opaque
// references, REDUCE yields {callable, args} and BUILD attaches state; the caller interprets.

/** A Python tuple (lists are plain JS arrays). */
export class PyTuple {
  constructor(readonly items: readonly PickleValue[]) {}
}

/** A `module.name` reference from GLOBAL / STACK_GLOBAL. */
export class PyGlobal {
  constructor(readonly module: string, readonly name: string) {}
  get qualified(): string { return `${this.module}.${this.name}`; }
}

/** The result of REDUCE (callable(*args)), with the state of a later BUILD. */
export class PyObject {
  state?: PickleValue;
  constructor(readonly callable: PickleValue, readonly args: PyTuple) {}
}

/**
 * bytes, bytearray and Python-2 `str` are Uint8Array views into the pickle buffer (no copy);
 * Python-3 `str` and Python-2 `unicode` are JS strings.
 */
export type PickleValue = null | boolean | number | string | Uint8Array | PickleValue[] | PyTuple | PyGlobal | PyObject;

export class PickleError extends Error {
  constructor(readonly offset: number, why: string) {
    super(`pickle byte offset ${offset}: ${why}`);
  }
}

export interface Unpickled {
  readonly value: PickleValue;
  /** Byte offset of the opcode that created an object (list, tuple, bytes, object), for error messages. */
  offsetOf(v: PickleValue): number | undefined;
}

const OP = {
  PROTO: 0x80, FRAME: 0x95, STOP: 0x2e,
  MARK: 0x28, EMPTY_LIST: 0x5d, LIST: 0x6c, APPEND: 0x61, APPENDS: 0x65,
  EMPTY_TUPLE: 0x29, TUPLE: 0x74, TUPLE1: 0x85, TUPLE2: 0x86, TUPLE3: 0x87,
  NEWTRUE: 0x88, NEWFALSE: 0x89, NONE: 0x4e,
  INT: 0x49, BININT1: 0x4b, BININT2: 0x4d, BININT: 0x4a,
  BINUNICODE: 0x58, SHORT_BINUNICODE: 0x8c, BINUNICODE8: 0x8d, UNICODE: 0x56,
  SHORT_BINBYTES: 0x43, BINBYTES: 0x42, BINBYTES8: 0x8e, BYTEARRAY8: 0x96,
  SHORT_BINSTRING: 0x55, BINSTRING: 0x54, STRING: 0x53,
  BINPUT: 0x71, LONG_BINPUT: 0x72, MEMOIZE: 0x94, PUT: 0x70,
  BINGET: 0x68, LONG_BINGET: 0x6a, GET: 0x67,
  GLOBAL: 0x63, STACK_GLOBAL: 0x93, REDUCE: 0x52, BUILD: 0x62,
} as const;
const NAME = new Map<number, string>(Object.entries(OP).map(([k, v]) => [v, k]));

const MARK = Symbol('mark');
type Slot = PickleValue | typeof MARK;

const utf8 = new TextDecoder('utf-8', { fatal: true });

function hex(b: number): string { return `0x${b.toString(16).padStart(2, '0')}`; }

/** Parses one pickle that must fill the whole buffer (trailing bytes are an error). */
export function unpickle(buf: Uint8Array): Unpickled {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const origin = new WeakMap<object, number>();
  const stack: Slot[] = [];
  const memo = new Map<number, PickleValue>();
  let pos = 0;
  let at = 0; // offset of the opcode being executed

  const fail = (why: string): never => { throw new PickleError(at, why); };
  const need = (n: number, what: string): void => {
    if (pos + n > buf.length) fail(`truncated: ${what} needs ${n} bytes, the data ends after ${buf.length - pos}`);
  };
  const u8 = () => { need(1, `${NAME.get(buf[at]!)} argument`); return buf[pos++]!; };
  const u16 = () => { need(2, `${NAME.get(buf[at]!)} argument`); const v = view.getUint16(pos, true); pos += 2; return v; };
  const u32 = () => { need(4, `${NAME.get(buf[at]!)} argument`); const v = view.getUint32(pos, true); pos += 4; return v; };
  const i32 = () => { need(4, `${NAME.get(buf[at]!)} argument`); const v = view.getInt32(pos, true); pos += 4; return v; };
  const u64 = () => {
    need(8, `${NAME.get(buf[at]!)} argument`);
    const v = view.getBigUint64(pos, true); pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail(`length ${v} is too large`);
    return Number(v);
  };
  const bytes = (n: number): Uint8Array => {
    need(n, `${NAME.get(buf[at]!)} data`);
    const b = buf.subarray(pos, pos + n); pos += n; return b;
  };
  /** Text argument up to (not including) the next '\n' (protocol 0 style). */
  const line = (): Uint8Array => {
    const end = buf.indexOf(0x0a, pos);
    if (end < 0) fail(`truncated: ${NAME.get(buf[at]!)} argument has no terminating newline`);
    const b = buf.subarray(pos, end); pos = end + 1; return b;
  };
  const ascii = (b: Uint8Array): string => String.fromCharCode(...b);
  const text = (b: Uint8Array): string => {
    try { return utf8.decode(b); } catch { return fail('invalid UTF-8 in a unicode string'); }
  };
  const made = <T extends PickleValue>(v: T): T => { if (typeof v === 'object' && v !== null) origin.set(v, at); return v; };
  const push = (v: PickleValue) => { stack.push(v); };
  const pop = (): PickleValue => {
    if (stack.length === 0) fail(`${NAME.get(buf[at]!)}: stack is empty`);
    const v = stack.pop()!;
    if (v === MARK) fail(`${NAME.get(buf[at]!)}: found a MARK where a value was expected`);
    return v as PickleValue;
  };
  const top = (): PickleValue => {
    const v = stack[stack.length - 1];
    if (v === undefined || v === MARK) fail(`${NAME.get(buf[at]!)}: no value on the stack`);
    return v as PickleValue;
  };
  /** Pops everything down to the newest MARK (and the mark itself). */
  const popMark = (): PickleValue[] => {
    const m = stack.lastIndexOf(MARK);
    if (m < 0) fail(`${NAME.get(buf[at]!)}: no MARK on the stack`);
    const items = stack.splice(m) as Slot[];
    items.shift();
    return items as PickleValue[];
  };
  const appendTo = (list: PickleValue, items: PickleValue[]) => {
    if (!Array.isArray(list)) fail(`${NAME.get(buf[at]!)}: target is not a list`);
    for (const x of items) (list as PickleValue[]).push(x);
  };
  const memoGet = (i: number): PickleValue => {
    if (!memo.has(i)) fail(`memo key ${i} was never stored`);
    return memo.get(i)!;
  };
  const memoPut = (i: number) => { memo.set(i, top()); };

  while (true) {
    at = pos;
    if (pos >= buf.length) fail('the data ends without a STOP opcode (truncated?)');
    const op = buf[pos++]!;
    switch (op) {
      case OP.PROTO: { const p = u8(); if (p > 5) fail(`unsupported pickle protocol ${p}`); break; }
      case OP.FRAME: { const n = u64(); need(n, 'FRAME'); break; } // framing is advisory: the opcodes follow inline
      case OP.STOP: {
        const v = pop();
        if (stack.length !== 0) fail(`STOP with ${stack.length} extra item(s) on the stack`);
        if (pos !== buf.length) fail(`${buf.length - pos} trailing byte(s) after STOP`);
        return { value: v, offsetOf: (x) => (typeof x === 'object' && x !== null ? origin.get(x) : undefined) };
      }
      case OP.MARK: stack.push(MARK); break;
      case OP.EMPTY_LIST: push(made([])); break;
      case OP.LIST: push(made(popMark())); break;
      case OP.APPEND: { const v = pop(); appendTo(top(), [v]); break; }
      case OP.APPENDS: { const items = popMark(); appendTo(top(), items); break; }
      case OP.EMPTY_TUPLE: push(made(new PyTuple([]))); break;
      case OP.TUPLE: push(made(new PyTuple(popMark()))); break;
      case OP.TUPLE1: { const a = pop(); push(made(new PyTuple([a]))); break; }
      case OP.TUPLE2: { const b = pop(), a = pop(); push(made(new PyTuple([a, b]))); break; }
      case OP.TUPLE3: { const c = pop(), b = pop(), a = pop(); push(made(new PyTuple([a, b, c]))); break; }
      case OP.NEWTRUE: push(true); break;
      case OP.NEWFALSE: push(false); break;
      case OP.NONE: push(null); break;
      case OP.INT: {
        // Protocols 0/1 write booleans as INT "01" / "00" (pickle.py load_int).
        const s = ascii(line());
        if (s === '01') push(true);
        else if (s === '00') push(false);
        else if (/^[+-]?\d+$/.test(s) && Number.isSafeInteger(Number(s))) push(Number(s));
        else fail(`INT: "${s}" is not an integer in the safe range`);
        break;
      }
      case OP.BININT1: push(u8()); break;
      case OP.BININT2: push(u16()); break;
      case OP.BININT: push(i32()); break;
      case OP.BINUNICODE: push(text(bytes(u32()))); break;
      case OP.SHORT_BINUNICODE: push(text(bytes(u8()))); break;
      case OP.BINUNICODE8: push(text(bytes(u64()))); break;
      case OP.UNICODE: push(rawUnicodeEscape(line(), fail)); break;
      case OP.SHORT_BINBYTES: push(made(bytes(u8()))); break;
      case OP.BINBYTES: push(made(bytes(u32()))); break;
      case OP.BINBYTES8: case OP.BYTEARRAY8: push(made(bytes(u64()))); break;
      case OP.SHORT_BINSTRING: push(made(bytes(u8()))); break;
      case OP.BINSTRING: { const n = i32(); if (n < 0) fail(`BINSTRING: negative length ${n}`); push(made(bytes(n))); break; }
      case OP.STRING: push(made(pythonStringLiteral(line(), fail))); break;
      case OP.BINPUT: memoPut(u8()); break;
      case OP.LONG_BINPUT: memoPut(u32()); break;
      case OP.MEMOIZE: memoPut(memo.size); break;
      case OP.PUT: { const s = ascii(line()); if (!/^\d+$/.test(s)) fail(`PUT: bad memo key "${s}"`); memoPut(Number(s)); break; }
      case OP.BINGET: push(memoGet(u8())); break;
      case OP.LONG_BINGET: push(memoGet(u32())); break;
      case OP.GET: { const s = ascii(line()); if (!/^\d+$/.test(s)) fail(`GET: bad memo key "${s}"`); push(memoGet(Number(s))); break; }
      case OP.GLOBAL: { const module = ascii(line()); const name = ascii(line()); push(made(new PyGlobal(module, name))); break; }
      case OP.STACK_GLOBAL: {
        const name = pop(), module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') fail('STACK_GLOBAL: module and name must be str');
        push(made(new PyGlobal(module as string, name as string)));
        break;
      }
      case OP.REDUCE: {
        const args = pop(), callable = pop();
        if (!(args instanceof PyTuple)) fail('REDUCE: arguments are not a tuple');
        push(made(new PyObject(callable, args as PyTuple)));
        break;
      }
      case OP.BUILD: {
        const state = pop();
        const obj = top();
        if (!(obj instanceof PyObject)) fail('BUILD: target is not an object made by REDUCE');
        (obj as PyObject).state = state;
        break;
      }
      default:
        fail(`unknown opcode ${hex(op)}${op >= 0x20 && op < 0x7f ? ` ('${String.fromCharCode(op)}')` : ''}`);
    }
  }
}

/** Python's raw-unicode-escape (protocol-0 UNICODE): bytes are latin-1 except \uXXXX / \UXXXXXXXX. */
function rawUnicodeEscape(b: Uint8Array, fail: (why: string) => never): string {
  const units = new Uint16Array(b.length); // escapes only shrink the text, so this is enough room
  let n = 0;
  for (let i = 0; i < b.length; i++) {
    const c = b[i]!;
    if (c === 0x5c && (b[i + 1] === 0x75 || b[i + 1] === 0x55)) {
      const len = b[i + 1] === 0x75 ? 4 : 8;
      const h = String.fromCharCode(...b.subarray(i + 2, i + 2 + len));
      if (h.length !== len || !/^[0-9a-fA-F]+$/.test(h)) fail(`UNICODE: truncated \\${String.fromCharCode(b[i + 1]!)} escape`);
      const cp = parseInt(h, 16);
      if (cp > 0x10ffff) fail(`UNICODE: code point 0x${h} out of range`);
      for (const u of String.fromCodePoint(cp)) for (let k = 0; k < u.length; k++) units[n++] = u.charCodeAt(k);
      i += 1 + len;
    } else {
      units[n++] = c;
    }
  }
  return unitsToString(units.subarray(0, n));
}

function unitsToString(units: Uint16Array): string {
  const parts: string[] = [];
  for (let i = 0; i < units.length; i += 8192) parts.push(String.fromCharCode(...units.subarray(i, i + 8192)));
  return parts.join('');
}

const SIMPLE_ESCAPES: Record<string, number> = { '\\': 0x5c, "'": 0x27, '"': 0x22, n: 0x0a, t: 0x09, r: 0x0d, a: 0x07, b: 0x08, f: 0x0c, v: 0x0b };

/** A protocol-0 STRING argument: a quoted Python-2 str literal (repr), decoded like codecs.escape_decode. */
function pythonStringLiteral(b: Uint8Array, fail: (why: string) => never): Uint8Array {
  const q = b[0];
  if (b.length < 2 || (q !== 0x27 && q !== 0x22) || b[b.length - 1] !== q) fail('STRING: argument is not a quoted string');
  const body = b.subarray(1, b.length - 1);
  const out: number[] = [];
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (c !== 0x5c) { out.push(c); continue; }
    const e = String.fromCharCode(body[++i] ?? 0);
    if (e in SIMPLE_ESCAPES) out.push(SIMPLE_ESCAPES[e]!);
    else if (e === 'x') {
      const h = String.fromCharCode(body[i + 1] ?? 0, body[i + 2] ?? 0);
      if (!/^[0-9a-fA-F]{2}$/.test(h)) fail('STRING: bad \\x escape');
      out.push(parseInt(h, 16)); i += 2;
    } else if (e >= '0' && e <= '7') {
      let v = 0, k = 0;
      while (k < 3 && body[i + k] !== undefined && body[i + k]! >= 0x30 && body[i + k]! <= 0x37) { v = v * 8 + body[i + k]! - 0x30; k++; }
      out.push(v & 0xff); i += k - 1;
    } else fail(`STRING: unsupported escape \\${e}`);
  }
  return Uint8Array.from(out);
}

/** Short description of a value for error messages. */
export function describe(v: PickleValue): string {
  if (v === null) return 'None';
  if (typeof v === 'boolean') return `bool ${v ? 'True' : 'False'}`;
  if (typeof v === 'number') return `int ${v}`;
  if (typeof v === 'string') return `str ${JSON.stringify(v.length > 20 ? v.slice(0, 20) + '…' : v)}`;
  if (v instanceof Uint8Array) return `bytes (${v.length})`;
  if (Array.isArray(v)) return `list (${v.length} items)`;
  if (v instanceof PyTuple) return `tuple (${v.items.length} items)`;
  if (v instanceof PyGlobal) return `global ${v.qualified}`;
  const c = v.callable instanceof PyGlobal ? v.callable.qualified : '?';
  return `object ${c}(…)`;
}
