// LFW-style pairs lists (strategy-specs 7.2; LFW README §3c) and the RFW no-header variant (7.7).
//   View 2 `pairs.txt`:        line 1 `<sets>\t<N>` (`10\t300`), then per set N matched + N mismatched lines.
//   View 1 `pairsDev*.txt`:    line 1 `<N>`, then N matched + N mismatched lines.
//   RFW `<Group>_pairs.txt`:   no header, matched / mismatched lines in any order.
// Matched line `name\tn1\tn2`, mismatched `name1\tn1\tname2\tn2`; image `<name>/<name>_%04d.jpg`.
import { readFile } from 'node:fs/promises';
import { contiguousFolds } from './verification.js';

export interface PairImage {
  readonly name: string;
  /** 1-based image number as written in the file. */
  readonly index: number;
  /** `<name>/<name>_%04d.jpg`, relative to the image root. */
  readonly path: string;
}

export interface ParsedPair {
  readonly a: PairImage;
  readonly b: PairImage;
  readonly same: boolean;
  /** 0-based fold: the set index for View 2 files, else the contiguous KFold rule. */
  readonly fold: number;
}

export interface ParsePairsOptions {
  /** 'lfw' (default): line 1 is the count header. 'none': RFW-style list without a header. */
  readonly header?: 'lfw' | 'none';
  /** Folds for files without sets (View 1, no header): contiguous KFold, default 10. */
  readonly folds?: number;
  /** Named in error messages. */
  readonly file?: string;
}

/** `<name>/<name>_%04d.jpg` (printf %04d: pads to 4 digits, never truncates). */
export function imagePath(name: string, index: number): string {
  return `${name}/${name}_${String(index).padStart(4, '0')}.jpg`;
}

interface Line {
  readonly no: number;
  readonly text: string;
  readonly fields: readonly string[];
}

function formatError(file: string, line: Line, why: string): Error {
  return new Error(`${file}:${line.no}: ${why}: "${line.text}"`);
}

function image(file: string, line: Line, name: string, num: string): PairImage {
  // Names become path segments, so separators or dot-dot would escape the image root.
  if (name.length === 0 || /[\\/]/.test(name) || name === '.' || name === '..') throw formatError(file, line, `invalid identity name "${name}"`);
  if (!/^\d+$/.test(num) || Number(num) < 1) throw formatError(file, line, `image number "${num}" is not a positive integer`);
  const index = Number(num);
  return { name, index, path: imagePath(name, index) };
}

function pairOf(file: string, line: Line, fold: number): ParsedPair {
  const f = line.fields;
  if (f.length === 3) return { a: image(file, line, f[0]!, f[1]!), b: image(file, line, f[0]!, f[2]!), same: true, fold };
  if (f.length === 4) return { a: image(file, line, f[0]!, f[1]!), b: image(file, line, f[2]!, f[3]!), same: false, fold };
  throw formatError(file, line, `expected 3 fields (name n1 n2) or 4 fields (name1 n1 name2 n2), got ${f.length}`);
}

function count(file: string, line: Line, s: string, what: string): number {
  if (!/^\d+$/.test(s)) throw formatError(file, line, `header ${what} "${s}" is not a non-negative integer`);
  return Number(s);
}

/**
 * Parses the text of a pairs list. Blank lines are skipped (line numbers still count them); fields are
 * split on tabs or spaces (names contain neither). In headered files every line must have the kind its
 * position implies (N matched, then N mismatched, per set) and the pair count must match the header.
 */
export function parsePairsText(text: string, opts: ParsePairsOptions = {}): readonly ParsedPair[] {
  const file = opts.file ?? '<pairs text>';
  const lines: Line[] = [];
  text.split('\n').forEach((raw, i) => {
    const t = raw.replace(/\r$/, '');
    if (t.trim().length > 0) lines.push({ no: i + 1, text: t, fields: t.trim().split(/[\t ]+/) });
  });

  if ((opts.header ?? 'lfw') === 'none') {
    const pairs = lines.map((l) => pairOf(file, l, 0));
    const fold = contiguousFolds(pairs.length, opts.folds ?? 10);
    return pairs.map((p, i) => ({ ...p, fold: fold[i]! }));
  }

  const head = lines[0];
  if (head === undefined) throw new Error(`${file}: empty pairs file (expected a header line "<sets>\\t<N>" or "<N>")`);
  if (head.no !== 1) throw formatError(file, head, 'expected the header on line 1, found blank lines before it');
  let sets: number, perSet: number, view2: boolean;
  if (head.fields.length === 2) {
    sets = count(file, head, head.fields[0]!, 'set count'); perSet = count(file, head, head.fields[1]!, 'pairs per set'); view2 = true;
  } else if (head.fields.length === 1) {
    sets = 1; perSet = count(file, head, head.fields[0]!, 'pair count'); view2 = false;
  } else {
    throw formatError(file, head, `header must be "<sets>\\t<N>" (View 2) or "<N>" (View 1), got ${head.fields.length} fields`);
  }

  const body = lines.slice(1), expected = sets * 2 * perSet;
  if (body.length > expected) throw formatError(file, body[expected]!, `more pairs than the header promises (${sets} × 2 × ${perSet} = ${expected})`);
  if (body.length < expected) {
    throw new Error(`${file}: ${body.length} pairs but the header "${head.text}" on line 1 promises ${sets} × 2 × ${perSet} = ${expected}`);
  }
  const pairs = body.map((l, i) => {
    const set = Math.floor(i / (2 * perSet)), wantSame = i % (2 * perSet) < perSet;
    const p = pairOf(file, l, set);
    if (p.same !== wantSame) {
      throw formatError(file, l, `expected a ${wantSame ? 'matched pair (name n1 n2)' : 'mismatched pair (name1 n1 name2 n2)'} at position ${i % (2 * perSet) + 1} of set ${set + 1}`);
    }
    return p;
  });
  if (view2) return pairs;
  const fold = contiguousFolds(pairs.length, opts.folds ?? 10);
  return pairs.map((p, i) => ({ ...p, fold: fold[i]! }));
}

/** Reads and parses a pairs file; errors name the file. */
export async function parsePairsFile(file: string, opts: Omit<ParsePairsOptions, 'file'> = {}): Promise<readonly ParsedPair[]> {
  return parsePairsText(await readFile(file, 'utf8'), { ...opts, file });
}
