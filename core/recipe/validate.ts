import { z } from 'zod';
import type { Contribution, Slot } from '../di/contribution.js';
import type { ContributionRegistry } from '../di/registry.js';
import { hashJson } from '../util/hash.js';
import { RecipeError, formatPath } from './errors.js';
import { componentSlotOf, withFileChecks } from './fields.js';
import { nearest } from './nearest.js';
import { recipeSchema, type RecipeShape, type StageRecipe } from './schema.js';
import type { RecipeSource } from './source.js';

type Path = readonly (string | number)[];

export interface ResolvedComponent<S extends Slot = Slot> {
  readonly slot: S;
  readonly kind: string;
  readonly keyPath: string;
  readonly options: Record<string, unknown>;
  readonly contribution: Contribution<S>;
}

export interface ResolvedStage {
  readonly recipe: StageRecipe;
  readonly strategy: ResolvedComponent<'strategy'>;
  readonly data?: ResolvedComponent<'data'>;
  readonly teacher?: ResolvedComponent<'teacher'>;
}

/** A validated recipe: its merged values, resolved components, and a hash of both. */
export interface Recipe {
  readonly shape: RecipeShape;
  /** The registered components the recipe was validated against (builds nested components). */
  readonly registry: ContributionRegistry;
  readonly source: RecipeSource;
  readonly hash: string;
  readonly teacher: ResolvedComponent<'teacher'>;
  readonly student?: ResolvedComponent<'student'>;
  readonly data?: ResolvedComponent<'data'>;
  readonly evalPairs?: ResolvedComponent<'pairs'>;
  readonly stages: readonly ResolvedStage[];
}

/** Unwraps optional/default/nullable wrappers to the schema underneath. */
function unwrap(s: z.ZodType): z.ZodType {
  let cur: any = s;
  for (let i = 0; i < 10; i++) {
    const t = cur?._zod?.def?.type;
    if (t === 'optional' || t === 'default' || t === 'nullable' || t === 'prefault' || t === 'nonoptional' || t === 'pipe') {
      cur = t === 'pipe' ? cur._zod.def.in : cur._zod.def.innerType;
    } else break;
  }
  return cur as z.ZodType;
}

/** The schema node at `path` (following discriminated unions by the value's kind). */
function schemaAt(schema: z.ZodType, p: Path, value: unknown): any {
  let s: any = unwrap(schema);
  let v: any = value;
  const pick = (u: any, kind: unknown) => u._zod.def.options.find((o: any) => o.shape?.kind?._zod?.def?.values?.includes(kind));
  for (const k of p) {
    const t = s?._zod?.def?.type;
    if (t === 'union' && s._zod.def.discriminator) s = pick(s, v?.kind);
    if (!s) return undefined;
    const t2 = s._zod.def.type;
    if (t2 === 'object') s = unwrap(s.shape[k as string]);
    else if (t2 === 'array') s = unwrap(s._zod.def.element);
    else if (t2 === 'record') s = unwrap(s._zod.def.valueType);
    else return undefined;
    v = v?.[k];
  }
  return s;
}

/** The keys an object schema accepts at `path` (for "did you mean"). */
function keysAt(schema: z.ZodType, p: Path, value: unknown): string[] {
  let s = schemaAt(schema, p, value);
  if (s?._zod?.def?.type === 'union' && s._zod.def.discriminator) {
    const kind = (getIn(value, p) as any)?.kind;
    s = s._zod.def.options.find((o: any) => o.shape?.kind?._zod?.def?.values?.includes(kind)) ?? s;
  }
  return s?._zod?.def?.type === 'object' ? Object.keys(s.shape) : [];
}

/** The kinds a discriminated union at `path` accepts. */
function kindsAt(schema: z.ZodType, p: Path, value: unknown): string[] {
  const s = schemaAt(schema, p, value);
  return s?._zod?.def?.type === 'union' ? s._zod.def.options.flatMap((o: any) => o.shape?.kind?._zod?.def?.values ?? []) : [];
}

function describeValue(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (typeof v === 'string') return `string "${v.length > 40 ? v.slice(0, 40) + '…' : v}"`;
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return `${typeof v} ${String(v)}`;
}

function getIn(v: unknown, p: Path): unknown {
  let cur: any = v;
  for (const k of p) cur = cur?.[k];
  return cur;
}

/** Turns the first zod issue into a located RecipeError. */
function toRecipeError(issue: z.core.$ZodIssue, prefix: Path, schema: z.ZodType, value: unknown, src: RecipeSource): RecipeError {
  const rel = issue.path as (string | number)[];
  const full = [...prefix, ...rel];
  const got = getIn(value, rel);
  switch (issue.code) {
    case 'unrecognized_keys': {
      const key = issue.keys[0]!;
      const known = keysAt(schema, rel, value);
      return new RecipeError(src.locate([...full, key], true), formatPath([...full, key]),
        `unknown key "${key}"; expected one of: ${known.join(', ')}`, nearest(key, known));
    }
    case 'invalid_type': {
      const expected = got === undefined ? `required key missing: expected ${issue.expected}` : `expected ${issue.expected}, got ${describeValue(got)}`;
      return new RecipeError(src.locate(full, got === undefined && full.length > 0), formatPath(full), expected);
    }
    case 'invalid_value': {
      const values = issue.values.map((x) => JSON.stringify(x));
      const sugg = typeof got === 'string' ? nearest(got, issue.values.map(String)) : undefined;
      return new RecipeError(src.locate(full), formatPath(full), `expected one of ${values.join(', ')}, got ${describeValue(got)}`, sugg);
    }
    case 'invalid_union': {
      const disc = (issue as any).discriminator as string | undefined;
      if (disc) {
        // zod puts the discriminator on the path itself for a kind it does not know.
        const atDisc = full[full.length - 1] === disc;
        const p2 = atDisc ? full : [...full, disc];
        const unionPath = atDisc ? rel.slice(0, -1) : rel;
        const kinds = kindsAt(schema, unionPath, value);
        const got2 = getIn(value, [...unionPath, disc]);
        return new RecipeError(src.locate(p2), formatPath(p2), `unknown ${disc} ${describeValue(got2)}; expected one of: ${kinds.join(', ')}`,
          typeof got2 === 'string' ? nearest(got2, kinds) : undefined);
      }
      return new RecipeError(src.locate(full), formatPath(full), issue.message);
    }
    case 'invalid_key': {
      // A record key its key schema refuses (e.g. a kd term name): say which key and why.
      const key = full[full.length - 1];
      const why = (issue as unknown as { issues?: { message: string }[] }).issues?.[0]?.message ?? issue.message;
      return new RecipeError(src.locate(full, true), formatPath(full), `key "${String(key)}": ${why}`);
    }
    default:
      return new RecipeError(src.locate(full), formatPath(full), `${issue.message}${got !== undefined && issue.code !== 'custom' ? `, got ${describeValue(got)}` : ''}`);
  }
}

/** Parses `value` with `schema`; the first issue becomes a located RecipeError (also for other YAML files read by readRecipeSource). */
export function parseOrThrow<T>(schema: z.ZodType<T>, value: unknown, prefix: Path, src: RecipeSource): T {
  const r = withFileChecks(() => schema.safeParse(value));
  if (r.success) return r.data;
  throw toRecipeError(r.error.issues[0]!, prefix, schema, value, src);
}

function resolveComponent<S extends Slot>(slot: S, raw: { kind: string }, p: Path, reg: ContributionRegistry, src: RecipeSource): ResolvedComponent<S> {
  const c = reg.find(slot, raw.kind) as Contribution<S> | undefined;
  if (!c) {
    const known = reg.kinds(slot);
    throw new RecipeError(src.locate([...p, 'kind']), formatPath([...p, 'kind']),
      `unknown ${slot} kind "${raw.kind}"; known kinds: ${known.join(', ') || '(none registered)'}`, nearest(raw.kind, known));
  }
  const schema = c.options.extend({ kind: z.literal(c.kind) }).strict();
  const options = parseOrThrow(schema, raw, p, src) as Record<string, unknown>;
  return { slot, kind: c.kind, keyPath: formatPath(p), options: resolveNested(schema, options, p, reg, src) as Record<string, unknown>, contribution: c };
}

/**
 * Validates the nested components of parsed options (fields made by componentField), each
 * against its own kind's schema, so their errors are located like top-level ones. Returns
 * the options with each nested component's defaults filled in.
 */
function resolveNested(schema: z.ZodType, value: unknown, p: Path, reg: ContributionRegistry, src: RecipeSource): unknown {
  const s: any = unwrap(schema);
  const slot = componentSlotOf(schema) ?? componentSlotOf(s);
  if (slot && value && typeof value === 'object') return resolveComponent(slot, value as { kind: string }, p, reg, src).options;
  const t = s?._zod?.def?.type;
  if (t === 'object' && value && typeof value === 'object' && !Array.isArray(value)) {
    const out: Record<string, unknown> = { ...(value as Record<string, unknown>) };
    for (const [k, sub] of Object.entries(s.shape as Record<string, z.ZodType>)) {
      if (out[k] !== undefined) out[k] = resolveNested(sub, out[k], [...p, k], reg, src);
    }
    return out;
  }
  if (t === 'array' && Array.isArray(value)) return value.map((v, i) => resolveNested(s._zod.def.element, v, [...p, i], reg, src));
  if (t === 'record' && value && typeof value === 'object' && !Array.isArray(value)) {
    return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, resolveNested(s._zod.def.valueType, v, [...p, k], reg, src)]));
  }
  return value;
}

/** Validates a merged recipe against the core schema and each named component's schema. */
export function validateRecipe(src: RecipeSource, reg: ContributionRegistry): Recipe {
  const shape = parseOrThrow(recipeSchema, src.value, [], src);
  const comp = <S extends Slot>(slot: S, raw: { kind: string } | undefined, p: Path) => (raw ? resolveComponent(slot, raw, p, reg, src) : undefined);
  const stages = (shape.stages ?? []).map((st, i): ResolvedStage => {
    const names = (shape.stages ?? []).slice(0, i).map((s) => s.name);
    if (names.includes(st.name)) throw new RecipeError(src.locate(['stages', i, 'name']), `stages[${i}].name`, `duplicate stage name "${st.name}"`);
    return {
      recipe: st,
      strategy: comp('strategy', st.strategy, ['stages', i, 'strategy'])!,
      ...(st.data ? { data: comp('data', st.data, ['stages', i, 'data'])! } : {}),
      ...(st.teacher ? { teacher: comp('teacher', st.teacher, ['stages', i, 'teacher'])! } : {}),
    };
  });
  const teacher = comp('teacher', shape.teacher, ['teacher'])!;
  const student = comp('student', shape.student, ['student']);
  const data = comp('data', shape.data, ['data']);
  const evalPairs = shape.eval ? comp('pairs', shape.eval.pairs, ['eval', 'pairs']) : undefined;
  if (teacher.kind === 'from-stage') throw new RecipeError(src.locate(['teacher', 'kind']), 'teacher.kind', 'from-stage names an earlier stage, so it belongs in a stage\'s `teacher:`, not the recipe\'s');
  stages.forEach((st, i) => {
    if (st.teacher?.kind === 'from-stage') {
      const earlier = stages.slice(0, i).map((s) => s.recipe.name);
      const want = st.teacher.options.stage as string;
      if (!earlier.includes(want)) {
        throw new RecipeError(src.locate(['stages', i, 'teacher', 'stage']), `stages[${i}].teacher.stage`,
          earlier.length ? `"${want}" is not an earlier stage; earlier stages: ${earlier.join(', ')}` : 'the first stage has no earlier stage to take a teacher from', nearest(want, earlier));
      }
    }
    if (!st.data && !data) throw new RecipeError(src.locate(['stages', i]), `stages[${i}].data`, 'no training data: set `data:` at the top level or in this stage');
  });
  if (stages.length > 0 && !student) throw new RecipeError(src.locate([]), 'student', 'required key missing: a recipe with stages needs a `student:`');

  // Hash what determines the results: validated values with defaults filled in.
  const hashed = {
    ...shape, extends: undefined, runsDir: undefined, cacheDir: undefined, description: undefined,
    teacher: teacher.options, student: student?.options, data: data?.options,
    eval: shape.eval ? { ...shape.eval, pairs: evalPairs?.options } : undefined,
    stages: stages.map((s) => ({ ...s.recipe, strategy: s.strategy.options, data: s.data?.options, teacher: s.teacher?.options })),
  };
  return {
    shape, source: src, registry: reg, hash: hashJson(hashed), teacher,
    ...(student ? { student } : {}), ...(data ? { data } : {}), ...(evalPairs ? { evalPairs } : {}), stages,
  };
}

/** The merged recipe with every default filled in, for `plan` and the manifest. */
export function mergedRecipe(r: Recipe): Record<string, unknown> {
  const { extends: _e, ...shape } = r.shape;
  return {
    ...shape,
    teacher: r.teacher.options, ...(r.student ? { student: r.student.options } : {}),
    ...(r.data ? { data: r.data.options } : {}),
    ...(r.shape.eval ? { eval: { ...r.shape.eval, pairs: r.evalPairs?.options } } : {}),
    ...(r.stages.length ? { stages: r.stages.map((s) => ({ ...s.recipe, strategy: s.strategy.options, ...(s.data ? { data: s.data.options } : {}), ...(s.teacher ? { teacher: s.teacher.options } : {}) })) } : {}),
  };
}
