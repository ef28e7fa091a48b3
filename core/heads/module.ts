import { contributionModule } from '../di/contribution.js';
import { arcface } from './arcface.js';
import { cosface } from './cosface.js';
import { elasticArcface } from './elastic-arcface.js';
import { elasticCosface } from './elastic-cosface.js';

/** The built-in margin heads (slot `head`), built by strategies through `ctx.build('head', o.head)`. */
export const headsModule = contributionModule(arcface, cosface, elasticArcface, elasticCosface);
