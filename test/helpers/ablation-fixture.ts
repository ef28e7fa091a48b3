import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { makeIdentityFolder, makeTinyTeacher, tmpDir, writePairsFile } from './fixtures.js';

export interface AblationFixture {
  readonly dir: string;
  /** A small base recipe: tiny conv student at 16 px, feature-kd, LFW-style pairs with group labels. */
  readonly base: string;
  readonly runsDir: string;
}

/**
 * Six identities cut from the npm demo photos, a seeded tiny teacher (32-D) and a pairs file whose
 * identities carry group labels (Person_1–3 "a", Person_4–6 "b"), so runs get per-group numbers.
 */
export async function ablationFixture(tag: string, o: { steps?: number; checkpointEvery?: number } = {}): Promise<AblationFixture> {
  const dir = tmpDir(tag);
  const faces = await makeIdentityFolder(path.join(dir, 'faces'), 6, 4, 32);
  const teacher = await makeTinyTeacher(path.join(dir, 'teacher'), 24, 32);
  const pairs = writePairsFile(path.join(dir, 'pairs.txt'), 6, 4);
  const groups = path.join(dir, 'groups.json');
  writeFileSync(groups, JSON.stringify({ Person_1: 'a', Person_2: 'a', Person_3: 'a', Person_4: 'b', Person_5: 'b', Person_6: 'b' }));
  const base = path.join(dir, 'base.yaml');
  writeFileSync(base, `name: base
seed: 0
backend: cpu
runsDir: ${path.join(dir, 'runs')}
teacher: { kind: layers-model, path: ${teacher} }
student: { kind: conv-student, inputSize: 16, widths: [8, 16], embeddingDim: 32 }
data: { kind: image-folder, root: ${faces}, size: 32 }
eval:
  pairs: { kind: lfw-pairs, root: ${faces}, pairsFile: ${pairs}, size: 32, groups: ${groups} }
  flip: true
stages:
  - name: train
    strategy: { kind: feature-kd, loss: mse-normalised }
    steps: ${o.steps ?? 8}
    batchSize: 4
    optimizer: { kind: adam, lr: 0.01 }
    checkpointEvery: ${o.checkpointEvery ?? 4}
`);
  return { dir, base, runsDir: path.join(dir, 'runs') };
}
