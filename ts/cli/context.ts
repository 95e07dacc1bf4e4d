/** What every command of the CLI is given: where to write, and test hooks. */
import type { DataCommandHooks } from './data.js';

export interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
  /** A live view is drawn only on a terminal (and never under CI). */
  tty: boolean;
  /** Aborts when stdout is closed by its reader (`st-native train | head`). */
  outputClosed?: AbortSignal;
}

/** For tests: stand-ins for the network and environment some commands touch. */
export interface CliHooks {
  data?: DataCommandHooks;
}

export interface CliContext {
  io: Io;
  hooks: CliHooks;
  /** A command's action reports its exit code here (commander's actions return nothing). */
  exit: (code: number) => void;
}
