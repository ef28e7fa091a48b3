// The generic embedding losses as `loss` components (recipe slot `loss`, e.g. in the `kd`
// strategy's terms). Strategy-specific losses register from their strategy's folder.
import { z } from 'zod';
import { contribution, contributionModule } from '../di/contribution.js';
import type { Loss } from '../interfaces/loss.js';
import { cosineDistance, mse, normalisedMse } from './embedding.js';

const plain = (name: string, compute: Loss['compute']): Loss => ({ name, compute });

export const mseLoss = contribution({
  slot: 'loss', kind: 'mse', summary: 'mean squared difference of the raw embeddings (FitNet hint)', options: z.object({}),
  async create() { return plain('mse', mse); },
});

export const normalisedMseLoss = contribution({
  slot: 'loss', kind: 'mse-normalised', summary: 'Σ‖n(s) − n(t)‖² / (2B) on unit embeddings (GKD fitnet.py)', options: z.object({}),
  async create() { return plain('mse-normalised', normalisedMse); },
});

export const cosineLoss = contribution({
  slot: 'loss', kind: 'cosine', summary: 'mean (1 − cos) of student and teacher embeddings', options: z.object({}),
  async create() { return plain('cosine', cosineDistance); },
});

export const lossesModule = contributionModule(mseLoss, normalisedMseLoss, cosineLoss);
