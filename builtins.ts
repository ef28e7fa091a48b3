// The composition root: the one place that lists the built-in modules. They load exactly
// like a user's plugin (a ContainerModule binding contributions).
import type { ContainerModule } from 'inversify';
import { modelsModule } from './core/models/module.js';
import groupPairs from './data-sources/group-pairs/group-pairs.js';
import imageFolder from './data-sources/image-folder/image-folder.js';
import lfwPairs from './data-sources/lfw-pairs/lfw-pairs.js';
import sampleFaces from './data-sources/sample-faces/sample-faces.js';
import featureKd from './strategies/feature-kd/feature-kd.js';

export const builtinModules: readonly ContainerModule[] = [modelsModule, imageFolder, sampleFaces, lfwPairs, groupPairs, featureKd];
