import { sampleKey, type SampleKey } from '../interfaces/data-source.js';

/**
 * The keys of a batch after some samples were flipped left-right (augment, views): a flipped
 * sample is keyed `<key>|flip`, so its teacher embedding is cached apart; and per sample the
 * key of the unflipped original where the image now is mirrored (flipped here or by an inner
 * source, not both: then it is upright again), or undefined where none is.
 */
export function flippedKeys(keys: readonly SampleKey[], flip: readonly boolean[], innerUnflipped?: readonly (SampleKey | null)[]): { keys: SampleKey[]; unflipped?: (SampleKey | null)[] } {
  const out = keys.map((k, i) => (flip[i] ? sampleKey(`${k}|flip`) : k));
  const unflipped = keys.map((k, i) => {
    const inner = innerUnflipped?.[i] ?? null;
    if (flip[i]) return inner === null ? k : null;
    return inner;
  });
  return { keys: out, ...(unflipped.some((k) => k !== null) ? { unflipped } : {}) };
}

/** The key a flipping source's inner source knows (for feedback). */
export function withoutFlip(k: SampleKey): SampleKey {
  return sampleKey(k.replace(/\|flip$/, ''));
}
