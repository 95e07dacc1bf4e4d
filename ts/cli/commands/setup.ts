/** `st-native setup`: its options and help; the work is in ../setup.ts. */
import { Command, Option, type CommandUnknownOpts } from '@commander-js/extra-typings';
import type { CliContext } from '../context.js';
import { setupCommand } from '../setup.js';

export function setupProgram(ctx: CliContext): CommandUnknownOpts {
  return new Command('setup')
    .description('install libtorch 2.11.0 into the per-user cache (once per machine)')
    .addOption(new Option('--cpu', 'libtorch without its CUDA libraries (about 0.55 GB to download, 0.5 GB on disk)').conflicts('cuda'))
    .addOption(new Option('--cuda', 'libtorch with the CUDA libraries torch==2.11.0 pins (about 2.5 GB to download, 3.8 GB on disk)'))
    .option('--pip', "install with Python's pip instead of fetching the wheels directly (also ST_NATIVE_SETUP=pip)")
    .option('--force', 'reinstall even when a complete install is there')
    .option('--json', 'print one JSON result line on stdout (progress stays on stderr)')
    .addHelpText(
      'after',
      `
Installs libtorch 2.11.0 (the version st-native is built against) from PyPI
into the per-user cache, $ST_NATIVE_CACHE_DIR or $XDG_CACHE_HOME/st-native
(default ~/.cache/st-native), where st-native finds it at run time. No Python
needed: it downloads PyTorch's wheels (and, for --cuda, the NVIDIA library
wheels torch pins) through the index's JSON API, checks their sha256 and
extracts only the shared libraries. ST_NATIVE_PYPI_URL names a mirror serving
the same API (default https://pypi.org/pypi). --pip installs with Python
3.10-3.14's pip instead (ST_NATIVE_PYTHON, else python3), using pip's own
configuration. Without --cpu or --cuda: --cuda where an NVIDIA driver is
loaded (/proc/driver/nvidia or /dev/nvidiactl), else --cpu.

Rerunning is a no-op once installed. Interrupting is safe: nothing is put in
place until the install is complete; a cut download is resumed by the next
run, which also removes other leftovers. ST_NATIVE_OFFLINE=1: no download,
an error that says what to copy instead.

Exit codes: 0 installed (or already there), 1 failed, 2 usage, 130 Ctrl-C.`,
    )
    .action(async (options) => {
      ctx.exit(await setupCommand(options, ctx.io));
    });
}
