import { z } from 'zod';
import { createHash } from 'node:crypto';

/**
 * A fixed train/held-out split by file name: a file is held out when the first 32 bits of the
 * SHA-256 of its name (relative to the data root), read as a fraction of 2³², fall below
 * `share`. It depends on the name alone, not on list order or on which other files exist, so
 * a training source and an evaluation source over the same folder split it the same way.
 */
export function isHeldOut(name: string, share: number): boolean {
  return createHash('sha256').update(name).digest().readUInt32BE(0) / 4294967296 < share;
}

export const holdoutField = z.strictObject({
  share: z.number().gt(0).lt(1).describe('fraction of the files held out (chosen by a hash of the file name)'),
  use: z.enum(['train', 'holdout']).describe('train: the files not held out; holdout: only the held-out ones'),
}).optional().describe('a fixed split by file-name hash, the same in every source that names it: train on one part, evaluate on the other');
export type HoldoutOption = z.infer<typeof holdoutField>;

/** Whether a file belongs to the part a `holdout:` option asks for (every file where none is set). */
export function inHoldoutPart(name: string, o: HoldoutOption): boolean {
  return o === undefined || isHeldOut(name, o.share) === (o.use === 'holdout');
}
