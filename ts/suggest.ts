/**
 * "Did you mean": the closest of a list of names to a misspelt one, for
 * commands, options, presets, attacks and config fields. Distances come from
 * fastest-levenshtein (a small, well-kept edit-distance library); case,
 * `-` and `_` are ignored first, so `pgd-20` finds `pgd20` and `Train` finds
 * `train`.
 */
import { distance } from 'fastest-levenshtein';

const squash = (s: string) => s.toLowerCase().replace(/[-_]/g, '');

/** The closest candidate, or null when none is close enough to be a typo. */
export function closest(input: string, candidates: readonly string[]): string | null {
  const exact = candidates.find((c) => squash(c) === squash(input));
  if (exact !== undefined) return exact;
  let best: string | null = null;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = distance(squash(input), squash(c));
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  // Two edits (a swapped pair of letters is two) from four letters on.
  const allowed = input.length <= 3 ? 1 : Math.max(2, Math.floor(input.length / 3));
  return best !== null && bestDistance <= allowed ? best : null;
}

/** ` (did you mean "x"?)`, or nothing when no candidate is close. */
export function didYouMean(input: string, candidates: readonly string[], quote = '"'): string {
  const c = closest(input, candidates);
  return c === null ? '' : ` (did you mean ${quote}${c}${quote}?)`;
}
