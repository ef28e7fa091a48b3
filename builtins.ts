// The composition root: the one place that lists the built-in modules. They load exactly
// like a user's plugin (a ContainerModule binding contributions).
import type { ContainerModule } from 'inversify';
import { headsModule } from './core/heads/module.js';
import { lossesModule } from './core/losses/module.js';
import { modelsModule } from './core/models/module.js';
import augment from './data-sources/augment/augment.js';
import folderPairs from './data-sources/folder-pairs/folder-pairs.js';
import groupPairs from './data-sources/group-pairs/group-pairs.js';
import imageFolder from './data-sources/image-folder/image-folder.js';
import insightfaceBin from './data-sources/insightface-bin/insightface-bin.js';
import latentGenerators from './data-sources/latent-generator/module.js';
import lfwPairs from './data-sources/lfw-pairs/lfw-pairs.js';
import mix from './data-sources/mix/mix.js';
import recordio from './data-sources/recordio/recordio.js';
import sampleFaces from './data-sources/sample-faces/sample-faces.js';
import views from './data-sources/views/views.js';
import bridge from './strategies/bridge/bridge.js';
import cckd from './strategies/cckd/cckd.js';
import darkRank from './strategies/darkrank/darkrank.js';
import ekd from './strategies/ekd/ekd.js';
import featureKd from './strategies/feature-kd/feature-kd.js';
import kd from './strategies/kd/kd.js';
import groupedKd from './strategies/grouped-kd/grouped-kd.js';
import logitKd from './strategies/logit-kd/logit-kd.js';
import marginOnly from './strategies/margin-only/margin-only.js';
import mstKd from './strategies/mst-kd/mst-kd.js';
import rkd from './strategies/rkd/rkd.js';
import sp from './strategies/sp/sp.js';
import synthDistill from './strategies/synthdistill/synthdistill.js';

export const builtinModules: readonly ContainerModule[] = [
  modelsModule,
  headsModule,
  lossesModule,
  // data sources
  imageFolder,
  recordio,
  sampleFaces,
  latentGenerators,
  views,
  mix,
  augment,
  // pair sources
  lfwPairs,
  insightfaceBin,
  folderPairs,
  groupPairs,
  // strategies
  kd,
  featureKd,
  rkd,
  sp,
  darkRank,
  cckd,
  marginOnly,
  ekd,
  groupedKd,
  logitKd,
  mstKd,
  synthDistill,
  bridge,
];
