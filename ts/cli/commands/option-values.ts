/**
 * Commander's parsed options keyed by their flag as typed (`data-dir`,
 * `no-write`), the form the option checks use in their messages: a user who
 * typed `--eps-l2` reads about `--eps-l2`, not `epsL2`.
 */
import type { Command } from '@commander-js/extra-typings';

export type FlagValues = Record<string, string | boolean | string[] | undefined>;

export function valuesByFlag(command: Pick<Command, 'options' | 'getOptionValue'>): FlagValues {
  const out: FlagValues = {};
  for (const option of command.options) {
    if (!option.long) continue;
    const value = command.getOptionValue(option.attributeName()) as string | boolean | string[] | undefined;
    const flag = option.long.replace(/^--/, '');
    // A negatable flag (`--no-write`) defaults to true; it was given when false.
    if (option.negate) {
      if (value === false) out[flag] = true;
    } else if (value !== undefined) {
      out[flag] = value;
    }
  }
  return out;
}

/** `--set a=1 --set b=2`: a repeatable option, collected in order. */
export const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value];
