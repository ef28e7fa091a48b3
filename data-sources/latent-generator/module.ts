import { contributionModule } from '../../core/index.js';
import { graphGenerator } from './graph-generator.js';
import { pcaFace } from './pca-face.js';

export default contributionModule(pcaFace, graphGenerator);
