import { ContainerModule } from 'inversify';
import type { z } from 'zod';
import type { DataSource } from '../interfaces/data-source.js';
import type { Head } from '../interfaces/head.js';
import type { Loss } from '../interfaces/loss.js';
import type { PairSource } from '../interfaces/pair-source.js';
import type { Strategy } from '../interfaces/strategy.js';
import type { Student } from '../interfaces/student.js';
import type { Teacher } from '../interfaces/teacher.js';
import type { Logger } from '../util/logger.js';
import { TOKENS } from './tokens.js';

/** What a component slot in a recipe builds. */
export interface SlotTypes {
  teacher: Teacher;
  student: Student;
  data: DataSource;
  pairs: PairSource;
  strategy: Strategy;
  head: Head;
  loss: Loss;
}
export type Slot = keyof SlotTypes;
export const SLOTS: readonly Slot[] = ['teacher', 'student', 'data', 'pairs', 'strategy', 'head', 'loss'];

/** Run-scoped facts a factory may need. */
export interface BuildContext {
  readonly seed: number;
  readonly runDir: string;
  /** Shared cache folder (teacher embeddings, detected faces): survives runs. */
  readonly cacheDir: string;
  readonly log: Logger;
  /** Resolves a recipe path (relative paths are relative to the working directory). */
  resolvePath(p: string): string;
  /**
   * Builds a nested component: an option declared with `componentField(slot)` arrives
   * validated (kind + that kind's options, defaults filled) and is built here.
   */
  build<S extends Slot>(slot: S, options: NestedComponent): Promise<SlotTypes[S]>;
  /**
   * Inside a run: the teacher an earlier stage produced (its strategy's `stageTeacher`, or
   * its student as it was when the stage ended). Absent outside runs.
   */
  stageOutput?(stage: string, use: 'auto' | 'student'): Promise<Teacher>;
}

/** A nested component's validated options, as a factory receives them. */
export type NestedComponent = { readonly kind: string } & Readonly<Record<string, unknown>>;

/**
 * A registered component kind: the recipe key, its options schema and its factory (the
 * Eclipse Theia "contribution" shape). The schema lives beside the component it configures.
 */
export interface Contribution<S extends Slot = Slot, Schema extends z.ZodObject = z.ZodObject> {
  readonly slot: S;
  readonly kind: string;
  readonly summary: string;
  readonly options: Schema;
  create(options: z.infer<Schema>, ctx: BuildContext): Promise<SlotTypes[S]>;
}

/** Type helper so a factory sees its parsed option types. */
export function contribution<S extends Slot, Schema extends z.ZodObject>(c: Contribution<S, Schema>): Contribution<S, Schema> {
  return c;
}

/** A ContainerModule that registers contributions: how built-ins and plugins alike plug in. */
export function contributionModule(...contributions: readonly Contribution<any, any>[]): ContainerModule {
  return new ContainerModule(({ bind }) => {
    for (const c of contributions) bind<Contribution>(TOKENS.Contribution).toConstantValue(c);
  });
}
