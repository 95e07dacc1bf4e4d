/**
 * Concurrent runs for seeds groups and sweeps (`parallel: N`): at most N
 * trainings at once, each in its own child process (isolated.ts), with an
 * equal, fixed share of the cores. The pool is shared by every cell of a
 * sweep, so N bounds the runs of the whole sweep, not of each cell.
 */
import { ConfigError } from '../config/errors.js';
import { isolatedThreads } from './isolated.js';

/** Which run a child process belongs to (for `onChildPid`). */
export interface ChildRun {
  /** The sweep cell, absent for a seeds group of its own. */
  cell?: string;
  seed: number;
}

export interface RunPool {
  /** Runs `job` once fewer than N jobs of this pool are running. */
  limit: <T>(job: () => Promise<T>) => Promise<T>;
  /** Threads per child when the config leaves them open: floor(cores / N). */
  threads: number;
  onChildPid?: (pid: number, run: ChildRun) => void;
}

/** `parallel` checked: an integer from 1 to 64. */
export function checkParallel(parallel: unknown, field = 'options.parallel'): number {
  if (typeof parallel === 'number' && Number.isInteger(parallel) && parallel >= 1 && parallel <= 64) return parallel;
  throw new ConfigError([{ path: field, message: `expected an integer from 1 to 64 (runs trained at once), got ${String(parallel)}` }]);
}

export function runPool(parallel: number, onChildPid?: RunPool['onChildPid']): RunPool {
  let active = 0;
  const waiting: (() => void)[] = [];
  const limit = async <T>(job: () => Promise<T>): Promise<T> => {
    while (active >= parallel) await new Promise<void>((resolve) => waiting.push(resolve));
    active += 1;
    try {
      return await job();
    } finally {
      active -= 1;
      waiting.shift()?.();
    }
  };
  return { limit, threads: isolatedThreads(parallel), ...(onChildPid ? { onChildPid } : {}) };
}
