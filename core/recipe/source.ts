import { readFileSync, existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, parse as parseYaml, type Document, type Node } from 'yaml';
import { RecipeError, formatPath, type SourceLocation } from './errors.js';

type Path = readonly (string | number)[];

/** One parsed YAML file with the means to map a key path back to line:column. */
class YamlFile {
  private constructor(readonly file: string, private readonly doc: Document, private readonly lines: LineCounter) {}

  static read(file: string, at?: { locate: () => RecipeError['location']; keyPath: string }): YamlFile {
    const refuse = (why: string): never => {
      if (at) throw new RecipeError(at.locate(), at.keyPath, `${why}: ${file}`);
      throw new RecipeError({ file }, '', why);
    };
    if (!existsSync(file)) refuse(at ? 'file not found' : 'recipe file not found');
    if (statSync(file).isDirectory()) refuse('this is a folder; a recipe is a YAML file');
    let src: string;
    try { src = readFileSync(file, 'utf8'); } catch (e) { return refuse(`cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`); }
    const lines = new LineCounter();
    const doc = parseDocument(src, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
    const err = doc.errors[0];
    if (err) {
      const pos = lines.linePos(err.pos[0]);
      throw new RecipeError({ file, line: pos.line, column: pos.col }, '', `YAML syntax error: ${err.message.split('\n')[0]}`);
    }
    const f = new YamlFile(file, doc, lines);
    let v: unknown;
    // The yaml library refuses documents whose aliases expand without bound (a "billion laughs").
    try { v = doc.toJS(); } catch (e) { throw new RecipeError({ file, line: 1, column: 1 }, '', `the YAML cannot be expanded: ${(e as Error).message.split('\n')[0]}`); }
    if (v === null || typeof v !== 'object' || Array.isArray(v)) {
      throw new RecipeError({ file, line: 1, column: 1 }, '', 'expected a mapping of recipe keys at the top level');
    }
    return f;
  }

  value(): Record<string, unknown> {
    return this.doc.toJS() as Record<string, unknown>;
  }

  private pos(node: Node | null | undefined): SourceLocation | undefined {
    const r = node?.range;
    if (!r) return undefined;
    const p = this.lines.linePos(r[0]);
    return { file: this.file, line: p.line, column: p.col };
  }

  /** Location of the value at `path`, or of its key when `key` is set; undefined if absent. */
  locate(p: Path, key = false): SourceLocation | undefined {
    if (key && p.length > 0) {
      const parent = p.length === 1 ? this.doc.contents : this.doc.getIn(p.slice(0, -1), true);
      const last = p[p.length - 1];
      if (isMap(parent)) {
        const pair = parent.items.find((it) => isScalar(it.key) && String(it.key.value) === String(last));
        if (pair) return this.pos(pair.key as Node);
      }
      return undefined;
    }
    if (p.length === 0) return this.pos(this.doc.contents as Node);
    const n = this.doc.getIn(p, true) as Node | undefined;
    return n && (isScalar(n) || isMap(n) || isSeq(n)) ? this.pos(n) : undefined;
  }
}

export interface RecipeSource {
  /** The top recipe file. */
  readonly file: string;
  /** The merged raw value (extends + --set applied), before validation. */
  readonly value: Record<string, unknown>;
  readonly baseFile?: string;
  readonly sets: readonly string[];
  /** Best location for a key path: --set, then the recipe, then its base, else the nearest parent. */
  locate(path: Path, key?: boolean): RecipeError['location'];
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Objects merge key by key; arrays and scalars in the override replace the base. */
export function deepMerge(base: unknown, over: unknown): unknown {
  if (isPlainObject(base) && isPlainObject(over)) {
    const out: Record<string, unknown> = { ...base };
    for (const [k, v] of Object.entries(over)) out[k] = k in base ? deepMerge(base[k], v) : v;
    return out;
  }
  return over;
}

function parseSet(s: string, file: string): { path: (string | number)[]; value: unknown } {
  const eq = s.indexOf('=');
  if (eq <= 0) throw new RecipeError({ file, set: s }, '', 'expected key.path=value');
  const keyPath = s.slice(0, eq).split('.').map((k) => (/^\d+$/.test(k) ? Number(k) : k));
  let value: unknown;
  try {
    value = parseYaml(s.slice(eq + 1));
  } catch (e) {
    throw new RecipeError({ file, set: s }, s.slice(0, eq), `value is not valid YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  return { path: keyPath, value: value === undefined ? null : value };
}

/**
 * Sets the value at `p`, creating what is missing on the way. A list index may name an
 * entry that exists or the next one (appending); one further on would leave holes, and a
 * numeric step into a mapping (or a key into a list) is refused with the --set named.
 */
function setIn(obj: Record<string, unknown>, p: readonly (string | number)[], value: unknown, raw: string, file: string): void {
  const at = { file, set: raw };
  let cur: any = obj;
  for (let i = 0; i < p.length; i++) {
    const k = p[i]!;
    const here = formatPath(p.slice(0, i)) || '(top level)';
    if (Array.isArray(cur)) {
      if (typeof k !== 'number') throw new RecipeError(at, formatPath(p.slice(0, i + 1)), `${here} is a list; index it with a number`);
      if (k > cur.length) throw new RecipeError(at, formatPath(p.slice(0, i + 1)), `${here} has ${cur.length} entr${cur.length === 1 ? 'y' : 'ies'}; an index up to ${cur.length} (the next one) can be set`);
    } else if (typeof k === 'number') {
      throw new RecipeError(at, formatPath(p.slice(0, i + 1)), `${here} is not a list`);
    }
    if (i === p.length - 1) { cur[k] = value; return; }
    if (cur[k] !== undefined && cur[k] !== null && typeof cur[k] !== 'object') {
      throw new RecipeError(at, formatPath(p.slice(0, i + 2)), `${formatPath(p.slice(0, i + 1))} is ${JSON.stringify(cur[k])}, a value, so it has no ${typeof p[i + 1] === 'number' ? 'entries' : 'keys'}`);
    }
    if (cur[k] === undefined || cur[k] === null) cur[k] = typeof p[i + 1] === 'number' ? [] : {};
    cur = cur[k];
  }
}

/** Reads a recipe: YAML with locations, one level of `extends:`, then `--set` overrides. */
export function readRecipeSource(file: string, sets: readonly string[] = []): RecipeSource {
  const top = YamlFile.read(file);
  let value: Record<string, unknown> = top.value();
  let base: YamlFile | undefined;
  if (value.extends !== undefined) {
    if (typeof value.extends !== 'string') {
      throw new RecipeError(top.locate(['extends']) ?? { file }, 'extends', 'expected the path of a base recipe (string)');
    }
    const baseFile = path.resolve(path.dirname(file), value.extends);
    base = YamlFile.read(baseFile, { locate: () => top.locate(['extends']) ?? { file }, keyPath: 'extends' });
    const bv = base.value();
    if (bv.extends !== undefined) {
      throw new RecipeError(base.locate(['extends']) ?? { file: baseFile }, 'extends', 'a base recipe cannot extend another one (extends is one level)');
    }
    const { extends: _drop, ...rest } = value;
    value = deepMerge(bv, rest) as Record<string, unknown>;
    value.extends = _drop;
  }
  const parsedSets = sets.map((s) => ({ raw: s, ...parseSet(s, file) }));
  for (const s of parsedSets) setIn(value, s.path, s.value, s.raw, file);

  const locate = (p: Path, key = false): RecipeError['location'] => {
    const key0 = formatPath(p);
    const inFiles = (q: Path) => top.locate(q) ?? base?.locate(q);
    for (const s of [...parsedSets].reverse()) {
      const sp = formatPath(s.path);
      if (key0 === sp || key0.startsWith(sp + '.') || key0.startsWith(sp + '[')) return { file, set: s.raw };
      // Under a key this --set created (foo in --set foo.bar=1, stages[1] in --set stages.1.name=b): no file has it.
      let n = 0;
      while (n < p.length && n < s.path.length && String(p[n]) === String(s.path[n])) n++;
      if (n > 0 && !inFiles(p.slice(0, n))) return { file, set: s.raw };
    }
    for (let n = p.length; n >= 0; n--) {
      const q = p.slice(0, n);
      const k = key && n === p.length;
      const hit = top.locate(q, k) ?? base?.locate(q, k);
      if (hit) return hit;
    }
    return { file };
  };
  return { file, value, ...(base ? { baseFile: base.file } : {}), sets, locate };
}
