// The composition root: the one place that lists the built-in modules. They load exactly
// like a user's plugin (a ContainerModule binding contributions).
import type { ContainerModule } from 'inversify';
import { modelsModule } from './core/models/module.js';
import imageFolder from './data-sources/image-folder/image-folder.js';
import latentGenerators from './data-sources/latent-generator/module.js';
import lfwPairs from './data-sources/lfw-pairs/lfw-pairs.js';
import mix from './data-sources/mix/mix.js';
import sampleFaces from './data-sources/sample-faces/sample-faces.js';
import views from './data-sources/views/views.js';
import featureKd from './strategies/feature-kd/feature-kd.js';

export const builtinModules: readonly ContainerModule[] = [modelsModule, imageFolder, sampleFaces, latentGenerators, views, mix, lfwPairs, featureKd];
