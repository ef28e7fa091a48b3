/** Where a recipe value came from. */
export interface SourceLocation {
  readonly file: string;
  readonly line: number;
  readonly column: number;
}

/**
 * A bad recipe: one message naming file:line:column, the key path, what was expected and
 * the nearest known key. The CLI prints it and exits 2 before anything is written.
 */
export class RecipeError extends Error {
  constructor(
    readonly location: SourceLocation | { readonly file: string; readonly set: string } | { readonly file: string },
    readonly keyPath: string,
    readonly expected: string,
    readonly suggestion?: string,
  ) {
    super(RecipeError.format(location, keyPath, expected, suggestion));
    this.name = 'RecipeError';
  }

  static format(loc: RecipeError['location'], keyPath: string, expected: string, suggestion?: string): string {
    const where = 'line' in loc ? `${loc.file}:${loc.line}:${loc.column}` : 'set' in loc ? `${loc.file} (--set ${loc.set})` : loc.file;
    const key = keyPath === '' ? '' : ` ${keyPath}:`;
    return `${where}:${key} ${expected}${suggestion ? ` (did you mean "${suggestion}"?)` : ''}`;
  }
}

/** Render a key path like `stages[0].optimizer.lr`. */
export function formatPath(path: readonly (string | number)[]): string {
  let s = '';
  for (const p of path) s += typeof p === 'number' ? `[${p}]` : s === '' ? p : `.${p}`;
  return s;
}
