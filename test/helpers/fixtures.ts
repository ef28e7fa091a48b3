import { contributionModule, type BuildContext, type Contribution } from '../../core/di/contribution.js';
import { createRootContainer } from '../../core/di/container.js';
import { ContributionRegistry } from '../../core/di/registry.js';
import { contextFor } from '../../core/engine/run.js';
import { stderrLogger } from '../../core/util/logger.js';
import { builtinModules } from '../../builtins.js';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { buildConvStudent } from '../../core/models/conv-student.js';
import { saveLayersModel } from '../../core/models/model-files.js';

const require = createRequire(import.meta.url);

export function tmpDir(tag: string): string {
  return mkdtempSync(path.join(os.tmpdir(), `facedistill-${tag}-`));
}

/** The real photos npm ships with face-api (always present after npm install). */
export function demoPhoto(i: number): string {
  return path.join(path.dirname(require.resolve('@vladmandic/face-api/package.json')), 'demo', `sample${i}.jpg`);
}

/**
 * An LFW-style identity folder cut from the demo photos: identity k = photo k, image j = a
 * 400 px window at offset j, resized to `size`. Files are named <name>/<name>_%04d.jpg so
 * the same folder serves image-folder and lfw-pairs.
 */
export async function makeIdentityFolder(root: string, identities = 4, perIdentity = 4, size = 48): Promise<string> {
  for (let k = 1; k <= identities; k++) {
    const name = `Person_${k}`;
    mkdirSync(path.join(root, name), { recursive: true });
    for (let j = 1; j <= perIdentity; j++) {
      const file = path.join(root, name, `${name}_${String(j).padStart(4, '0')}.jpg`);
      if (existsSync(file)) continue;
      await sharp(demoPhoto(((k - 1) % 6) + 1)).extract({ left: 300 + 60 * j, top: 200 + 40 * j, width: 400, height: 400 })
        .resize(size, size).jpeg({ quality: 90 }).toFile(file);
    }
  }
  return root;
}

/** A pairs.txt (View 1 layout: one count line) over makeIdentityFolder's names. */
export function writePairsFile(file: string, identities = 4, perIdentity = 4): string {
  const same: string[] = [], diff: string[] = [];
  for (let k = 1; k <= identities; k++) {
    for (let j = 2; j <= perIdentity; j++) same.push(`Person_${k}\t1\t${j}`);
    for (let m = k + 1; m <= identities; m++) diff.push(`Person_${k}\t${1 + (m % perIdentity)}\tPerson_${m}\t${1 + (k % perIdentity)}`);
  }
  const n = Math.min(same.length, diff.length);
  writeFileSync(file, `${n}\n${same.slice(0, n).join('\n')}\n${diff.slice(0, n).join('\n')}\n`);
  return file;
}

/** A tiny frozen teacher: a seeded random conv net saved as a tfjs LayersModel. */
export async function makeTinyTeacher(dir: string, inputSize = 24, embeddingDim = 32): Promise<string> {
  const m = buildConvStudent({ inputSize, widths: [8, 16], embeddingDim }, 1234);
  await saveLayersModel(m, dir);
  m.dispose();
  return path.join(dir, 'model.json');
}

/** A BuildContext over every built-in component (nested components build through it). */
export function testContext(dir: string, seed = 0): BuildContext {
  return contextFor(ContributionRegistry.fromContainer(createRootContainer(builtinModules)), { seed, runDir: dir, cacheDir: path.join(dir, '.cache'), log: stderrLogger(true) });
}

/** A BuildContext over the built-ins plus test-only contributions (e.g. a fixed-image data source). */
export function testContextWith(dir: string, seed: number, ...extra: readonly Contribution<any, any>[]): BuildContext {
  return contextFor(ContributionRegistry.fromContainer(createRootContainer([...builtinModules, contributionModule(...extra)])), { seed, runDir: dir, cacheDir: path.join(dir, '.cache'), log: stderrLogger(true) });
}
