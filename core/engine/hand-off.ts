// What a stage hands to later stages (`teacher: { kind: from-stage, stage: <name> }`): its
// strategy's teacher (MST-KD's fused adaptor, bridge's head on the teacher), else the student
// as the stage left it. Kept in memory within a process and on disk under
// <run>/stages/<name>/ so that a resumed run can rebuild it.
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { BuildContext } from '../di/contribution.js';
import type { Strategy } from '../interfaces/strategy.js';
import type { Student } from '../interfaces/student.js';
import type { Teacher } from '../interfaces/teacher.js';
import { loadLayersTeacher } from '../models/layers-model-teacher.js';
import { saveLayersModel } from '../models/model-files.js';
import type { Recipe } from '../recipe/validate.js';
import { writeJsonAtomic } from '../util/fs.js';
import { CheckpointStore, toNamedArrays } from './checkpoint.js';
import { RunError } from './errors.js';
import { assignVariables } from './trainer.js';

/** A stage set up again (data, teacher, initialised strategy), to restore what it trained. */
export type StageRebuild = (i: number) => Promise<{ strategy: Strategy; stageTeacher: Teacher }>;

export class HandOffStore {
  private readonly outputs = new Map<string, Teacher>();
  /** Set once the stage runner exists (it needs this store's stageOutput for its own contexts). */
  rebuild?: StageRebuild;

  constructor(private readonly dir: string, private readonly recipe: Recipe, private readonly disposables: { dispose(): void }[]) {}

  private stageDir(name: string): string { return path.join(this.dir, 'stages', name); }

  /** Publishes stage i's strategy teacher, if its strategy makes one; true when it did (the strategy must then stay alive). */
  publish(i: number, strategy: Strategy, stageTeacher: Teacher): boolean {
    if (!strategy.stageTeacher) return false;
    this.outputs.set(this.recipe.stages[i]!.recipe.name, strategy.stageTeacher(stageTeacher));
    return true;
  }

  /** BuildContext.stageOutput: the hand-off of the stage named, from memory, else rebuilt from disk. */
  readonly stageOutput: NonNullable<BuildContext['stageOutput']> = async (name, use) => {
    const i = this.recipe.stages.findIndex((s) => s.recipe.name === name);
    if (i < 0) throw new RunError(`from-stage: no stage named "${name}"`);
    const key = use === 'student' ? `${name}#student` : name;
    const have = this.outputs.get(key);
    if (have) return have;
    if (use === 'auto' && this.rebuild) {
      // Finished in an earlier process: rebuild the strategy and restore what it trained.
      const bundle = await new CheckpointStore(path.join(this.stageDir(name), 'strategy')).latest();
      if (bundle) {
        const s = await this.rebuild(i);
        assignVariables(s.strategy.variables(), bundle.tensors.strategy);
        s.strategy.restore(bundle.state.strategy);
        this.disposables.push(s.strategy);
        if (this.publish(i, s.strategy, s.stageTeacher)) return this.outputs.get(name)!;
      }
    }
    const file = path.join(this.stageDir(name), 'student', 'model.json');
    if (!existsSync(file)) throw new RunError(`from-stage: stage "${name}" has not produced a student yet (${file} is missing)`);
    const t = await loadLayersTeacher(file, `from-stage:${name}`);
    this.disposables.push(t);
    this.outputs.set(key, t);
    return t;
  };

  /**
   * Saves what stage i hands on, after it trained: the student as it is now, and the
   * strategy's trained variables where it makes a teacher (then published; returns true).
   */
  async save(i: number, student: Student, strategy: Strategy, stageTeacher: Teacher, res: { steps: number; elapsedSec: number }): Promise<boolean> {
    const name = this.recipe.stages[i]!.recipe.name;
    await saveLayersModel(student.model, path.join(this.stageDir(name), 'student'));
    await writeJsonAtomic(path.join(this.stageDir(name), 'student', 'contract.json'), student.contract);
    if (!strategy.stageTeacher) return false;
    await new CheckpointStore(path.join(this.stageDir(name), 'strategy'), 1).save({
      state: { recipeHash: this.recipe.hash, stageIndex: i, stage: name, step: res.steps, lrScale: 1, rng: null, data: null, strategy: strategy.state(), elapsedSec: res.elapsedSec },
      tensors: { student: [], optimizer: [], strategy: await toNamedArrays(strategy.variables().map((v) => ({ name: v.name, tensor: v }))) },
    });
    return this.publish(i, strategy, stageTeacher);
  }
}
