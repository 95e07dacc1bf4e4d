/** `st-native setup`: its options and help; the work is in ../setup.ts. */
import { Command, Option, type CommandUnknownOpts } from '@commander-js/extra-typings';
import type { CliContext } from '../context.js';
import { setupCommand } from '../setup.js';

export function setupProgram(ctx: CliContext): CommandUnknownOpts {
  return new Command('setup')
    .description('install libtorch 2.11.0 into the per-user cache (once per machine)')
    .addOption(new Option('--cpu', 'libtorch without its CUDA libraries (about 0.55 GB to download, 0.7 GB on disk)').conflicts('cuda'))
    .addOption(new Option('--cuda', 'torch==2.11.0 with its CUDA libraries (about 2.7 GB to download, 4.7 GB on disk)'))
    .option('--force', 'reinstall even when a complete install is there')
    .option('--json', "print one JSON result line on stdout (pip's progress stays on stderr)")
    .addHelpText(
      'after',
      `
Installs libtorch 2.11.0 (the version st-native is built against) from PyPI
with pip into the per-user cache, $ST_NATIVE_CACHE_DIR or
$XDG_CACHE_HOME/st-native (default ~/.cache/st-native), where st-native finds
it at run time. Needs Python 3.10-3.14 with pip (ST_NATIVE_PYTHON, else python3).
Without --cpu or --cuda: --cuda where an NVIDIA driver is loaded
(/proc/driver/nvidia or /dev/nvidiactl), else --cpu.

Rerunning is a no-op once installed. Interrupting is safe: nothing is put in
place until the install is complete, and leftovers are removed by the next run.

Exit codes: 0 installed (or already there), 1 failed, 2 usage, 130 Ctrl-C.`,
    )
    .action(async (options) => {
      ctx.exit(await setupCommand(options, ctx.io));
    });
}
