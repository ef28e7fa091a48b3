import { z } from 'zod';
import type { Slot } from '../di/contribution.js';
import type { ContributionRegistry } from '../di/registry.js';
import { componentRef, evalSchema, recipeSchema, stageSchema } from './schema.js';

/** A JSON Schema of recipes with every registered component kind, for editor completion. */
export function recipeJsonSchema(reg: ContributionRegistry): Record<string, unknown> {
  const slot = (s: Slot): z.ZodType => {
    const opts = reg.all(s).map((c) => c.options.extend({ kind: z.literal(c.kind) }).strict().describe(c.summary));
    return opts.length === 0 ? componentRef : opts.length === 1 ? opts[0]! : z.union(opts as unknown as [z.ZodType, z.ZodType, ...z.ZodType[]]);
  };
  const stage = stageSchema.extend({ strategy: slot('strategy'), data: slot('data').optional(), teacher: slot('teacher').optional() });
  const full = recipeSchema.extend({
    teacher: slot('teacher'),
    student: slot('student').optional(),
    data: slot('data').optional(),
    eval: evalSchema.extend({ pairs: slot('pairs') }).optional(),
    stages: z.array(stage).min(1).optional(),
  });
  return { ...z.toJSONSchema(full, { io: 'input', unrepresentable: 'any' }), title: 'facedistill recipe' };
}
