/** Maps failures to exit codes and one clear message on stderr. */
import { ConfigError } from '../config/errors.js';
import { DatasetError } from '../data/errors.js';
import { NotARunFolderError } from '../experiment/run-dir.js';
import { OptionsError } from '../options-error.js';

export class UsageError extends Error {
  override name = 'UsageError';
}

/**
 * Exit codes. A run stopped by a signal exits 128 + the signal's number, as
 * a process killed by it would, so shells and schedulers read it the same
 * way (but the run stopped cleanly: checkpoint and summary are written).
 */
export const EXIT = { ok: 0, failed: 1, usage: 2, hangup: 129, interrupted: 130, pipeClosed: 141, terminated: 143 } as const;

export function report(e: unknown, write: (s: string) => void): number {
  if (e instanceof NotARunFolderError) {
    write(e.message);
    return EXIT.usage;
  }
  if (e instanceof OptionsError) {
    write(`invalid options:\n${e.issues.map((i) => `  ${i.path ? `${i.path}: ` : ''}${i.message}`).join('\n')}`);
    return EXIT.usage;
  }
  if (e instanceof ConfigError) {
    write(`invalid config:\n${e.issues.map((i) => `  ${i.path ? `${i.path}: ` : ''}${i.message}`).join('\n')}`);
    return EXIT.usage;
  }
  if (e instanceof UsageError) {
    write(`${e.message}\n(see --help)`);
    return EXIT.usage;
  }
  if (e instanceof DatasetError && e.code === 'ERR_DATASET_UNAVAILABLE') {
    // The config asked for something this version cannot load: nothing was attempted.
    write(`invalid config:\n  dataset.name: ${e.message}`);
    return EXIT.usage;
  }
  if (e instanceof DatasetError) {
    write(`dataset error: ${e.message}`);
    return EXIT.failed;
  }
  const err = e as Error & { code?: string; runDir?: string };
  if (err.code === 'ERR_DEVICE' && typeof err.message === 'string') {
    // A device this machine does not have was asked for: nothing ran.
    write(`invalid config:\n  device: ${err.message.replace(/^device: (device )?/, '')}`);
    return EXIT.usage;
  }
  if (err.code === 'ERR_INVALID_CONFIG' && typeof err.message === 'string') {
    // The core's second line of defence (values that depend on the data, such
    // as a batch larger than the training split): reported like the schema's.
    write(`invalid config:\n  ${err.message.replace(/^invalid config: /, '')}`);
    return EXIT.usage;
  }
  write(`error${err.code ? ` [${err.code}]` : ''}: ${err.message ?? String(e)}${err.runDir ? `\nrun folder: ${err.runDir}` : ''}`);
  return EXIT.failed;
}
