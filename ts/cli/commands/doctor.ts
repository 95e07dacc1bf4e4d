/** `st-native doctor`: its options and help; the checks are in ../doctor.ts. */
import { Command, type CommandUnknownOpts } from '@commander-js/extra-typings';
import type { CliContext } from '../context.js';
import { doctorCommand } from '../doctor.js';

export function doctorProgram(ctx: CliContext): CommandUnknownOpts {
  return new Command('doctor')
    .description('check what st-native would run on: addon, libtorch, CUDA, GPUs, folders')
    .option('--json', 'print the report as JSON')
    .addHelpText(
      'after',
      `
Reports which addon package loaded and from where, where libtorch came from
and its version, CUDA and cuDNN availability (and why not), GPUs with their
memory, cores and threads, the cache and data folders, the datasets present,
and each problem with the command that fixes it.

libtorch is searched in this order: ST_NATIVE_LIBTORCH, LIBTORCH (a libtorch
folder or its lib/), the torch of ST_NATIVE_PYTHON (else python3), this
package's .venv, then the cache that \`st-native setup\` fills.

Exit codes: 0 training can run, 1 it cannot (no usable libtorch, or the addon
does not load).`,
    )
    .action(async (options) => {
      ctx.exit(await doctorCommand(options, ctx.io));
    });
}
