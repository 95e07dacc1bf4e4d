/** `st-native sweep`: its options and help; the work is in ../experiments.ts. */
import { Command, type CommandUnknownOpts } from '@commander-js/extra-typings';
import { DEFAULT_PRESET } from '../../config/presets.js';
import type { CliContext } from '../context.js';
import { sweepCommand } from '../experiments.js';
import { collect } from './option-values.js';

export function sweepProgram(ctx: CliContext): CommandUnknownOpts {
  return new Command('sweep')
    .description('train a grid of configurations (e.g. beta × regulariser), each with one or more seeds; resumable')
    .option('--set <key.path=v1,v2,...>', 'an axis of the grid (repeatable), e.g. --set method.beta=1,2,4 --set method.reg=js,l2; values are read as JSON when they parse, else as text; one value fixes a field for every cell', collect)
    .option('--seeds <n|list>', "seeds per cell: N (0 to N-1) or a list (0,1,2); default: the config's seed")
    .option('--preset <name>', `every cell starts from this preset (default: ${DEFAULT_PRESET})`)
    .option('--config <file>', 'JSON overrides every cell shares')
    .option('--epochs <n>', 'shorthand for --set epochs=N')
    .option('--device <device>', 'auto | cpu | cuda')
    .option('--runs-dir <dir>', 'where the sweep folder goes (default: runs)')
    .option('--data-dir <dir>', 'where downloaded datasets are')
    .option('--name <name>', 'the sweep folder name (default: <time>-sweep); an existing sweep of that name with the same grid is continued')
    .option('--resume <sweepDir>', 'continue that sweep with its own grid.json (finished cells are kept as they are)')
    .option('--parallel <n>', 'train up to N runs at once, each in its own process with an equal share of the cores (unless threads is set); a run whose process dies fails its cell, the others go on (exit 1 at the end)')
    .option('--no-report', 'do not write report.html (the sweep\'s and each cell\'s) at the end')
    .option('--json', 'print the results as one JSON object on stdout (progress lines are left out)')
    .addHelpText(
      'after',
      `
The sweep folder holds grid.json, cells/<cell>/ (a seeds group per cell, one
run folder per seed) and results.json, results.csv and results.md: each
cell's clean and robust accuracy as mean ± 95% CI (Student t, n−1), and
report.html with the clean vs robust trade-off plot.

Ctrl-C stops the run in progress within a step (exit 130); the same command,
or --resume, continues: a cell is finished when all its seeds have a
completed summary, and finished cells are never trained or written again.
After kill -9 the same holds; an interrupted run continues from its last
completed epoch.

Examples:
  $ st-native sweep --set method.beta=1,2,4 \\
      --set method.reg=js,l2
  $ st-native sweep --set method.beta=1,3 --seeds 3 \\
      --name betas
  $ st-native sweep --resume runs/betas --parallel 2

Exit codes: 0 done, 1 failed, 2 invalid config or usage, 130 Ctrl-C,
143 SIGTERM, 129 SIGHUP, 141 stdout closed.`,
    )
    .action(async (options) => {
      ctx.exit(
        await sweepCommand(
          {
            preset: options.preset,
            config: options.config,
            set: options.set ?? [],
            seeds: options.seeds,
            epochs: options.epochs,
            device: options.device,
            runsDir: options.runsDir,
            dataDir: options.dataDir,
            name: options.name,
            resume: options.resume,
            parallel: options.parallel,
            report: options.report,
            json: Boolean(options.json),
          },
          ctx.io,
        ),
      );
    });
}
