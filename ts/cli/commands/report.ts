/** `st-native report`: one self-contained HTML file on a run or a folder of runs. */
import { Command, type CommandUnknownOpts } from '@commander-js/extra-typings';
import { writeReport } from '../../report/index.js';
import type { CliContext } from '../context.js';
import { EXIT } from '../errors.js';

export function reportProgram(ctx: CliContext): CommandUnknownOpts {
  return new Command('report')
    .description('write one self-contained HTML report (plots, tables, config, provenance) on a run or a folder of runs')
    .usage('<runDir|folder> [options]')
    .argument('<folder>', 'a run folder, or a folder whose subfolders are runs (a sweep, the runs folder)')
    .option('--out <file>', 'where to write the HTML (default: report.html in the folder, replaced atomically)')
    .addHelpText(
      'after',
      `
A run's report has its results with 95% intervals, its training curves
(clean and robust accuracy per epoch with the best epoch marked; the loss and
its parts; the learning rate), every evaluation kept in the folder (eval-*.json
and eval-history/) as a table and a plot, its provenance and its config. A
folder's report puts its runs side by side, plots clean vs robust accuracy
(one series per method and regulariser, labelled by beta) and each run's
accuracy curve. The file has its CSS and SVG inline and no scripts: it opens
offline, anywhere, and can be mailed as it is.

Examples:
  $ st-native report runs/my-run
  $ st-native report runs --out runs.html

Exit codes: 0 written, 1 a file could not be read or written.`,
    )
    .action(async (folder, options) => {
      const result = await writeReport(folder, options.out === undefined ? {} : { out: options.out });
      for (const n of result.notices) ctx.io.err(`note: ${n}`);
      ctx.io.out(result.file);
      ctx.exit(EXIT.ok);
    });
}
