/** The `st-native` command line: the process's side (streams, exit code) of the command tree in ./program.ts. */
import { CommanderError } from '@commander-js/extra-typings';
import { setInvocation } from '../experiment/provenance.js';
import type { CliHooks, Io } from './context.js';
import { EXIT, report } from './errors.js';
import { buildProgram } from './program.js';

export type { Io } from './context.js';

/** Runs one command line; resolves to its exit code (never throws). */
export async function main(argv: string[], io: Io, hooks: CliHooks = {}): Promise<number> {
  let code: number = EXIT.ok;
  const program = buildProgram({ io, hooks, exit: (c) => (code = c) });
  if (argv.length === 0) {
    // No command: the overview, as a usage error.
    io.err(program.helpInformation().replace(/\n$/, ''));
    return EXIT.usage;
  }
  try {
    await program.parseAsync(argv, { from: 'user' });
    return code;
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version end parsing with exit code 0; every parse error is a usage error.
      return e.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    return report(e, io.err);
  }
}

/**
 * Entry point used by bin/st-native.js. A reader that closes our stdout
 * (`| head`) is a normal end of a pipeline: writes stop, `train` stops its
 * run cleanly, and no EPIPE trace is printed.
 */
export async function run(): Promise<void> {
  const outputClosed = new AbortController();
  // EPIPE first, then ERR_STREAM_DESTROYED for writes already queued: any
  // stdout error means the output is gone.
  process.stdout.on('error', () => outputClosed.abort());
  // Nowhere left to report a failing stderr to; never crash over it.
  process.stderr.on('error', () => undefined);
  const io: Io = {
    out: (s) => {
      if (!outputClosed.signal.aborted) process.stdout.write(`${s}\n`);
    },
    err: (s) => {
      if (!process.stderr.destroyed) process.stderr.write(`${s}\n`);
    },
    tty: Boolean(process.stdout.isTTY) && !process.env.CI,
    outputClosed: outputClosed.signal,
  };
  setInvocation(process.argv.slice(2));
  process.exitCode = await main(process.argv.slice(2), io);
}
