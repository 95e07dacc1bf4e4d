/** `st-native train`: its options and help; the work is in ../train.ts. */
import { Command, type CommandUnknownOpts } from '@commander-js/extra-typings';
import { ConfigError } from '../../config/errors.js';
import { DEFAULT_PRESET } from '../../config/presets.js';
import type { CliContext } from '../context.js';
import { seedsCommand } from '../experiments.js';
import { trainCommand } from '../train.js';
import { collect } from './option-values.js';

export function trainProgram(ctx: CliContext): CommandUnknownOpts {
  return new Command('train')
    .description('train a model (default: ST on the embedded MNIST digits)')
    .option('--preset <name>', `start from a named preset (default: ${DEFAULT_PRESET}; see \`st-native presets\`)`)
    .option('--config <file>', 'JSON overrides, e.g. {"method": {"beta": 6}, "epochs": 5}')
    .option(
      '--set <key.path=value>',
      'one override (repeatable), e.g. --set method.beta=6 --set eval.steps=50; the value is read as JSON when it parses (6, true, null, [80,100], \'"2024"\'), else as text',
      collect,
    )
    .option('--epochs <n>', 'shorthand for --set epochs=N')
    .option('--device <device>', 'auto | cpu | cuda')
    .option('--runs-dir <dir>', 'where run folders go (default: runs)')
    .option('--data-dir <dir>', 'where downloaded datasets are (shorthand for --set dataset.dataDir=DIR; default: $ST_NATIVE_DATA_DIR, else ~/.local/share/st-native)')
    .option('--name <name>', 'run folder name (default: <time>-<method>; a taken name gets -2, -3, ...)')
    .option('--resume <runDir>', "continue that run from its last completed epoch (bit-exact on CPU); only --epochs, --device and threads may differ from the run's config")
    .option('--seeds <n|list>', 'train N seeds (0 to N-1) or the listed ones (0,1,2), each its own run in a seeds group folder (--name names it); prints every metric as mean ± 95% CI; the same command again continues an interrupted group')
    .option('--parallel <n>', 'with --seeds: train up to N seeds at once, each in its own process with an equal share of the cores (unless threads is set)')
    .option('--no-report', 'do not write report.html into the run (or seeds group) folder at the end')
    .option('--json', 'print one JSON event per line on stdout, nothing else (with --seeds: the results as one JSON object)')
    .addHelpText(
      'after',
      `
Overrides apply in order: preset, --config, --set, then the shorthands. Unknown
fields are errors. On a terminal a live dashboard shows progress; otherwise
plain progress lines on stderr (or --json on stdout).

Ctrl-C (or SIGTERM, SIGHUP) stops within one training step and saves
checkpoints/interrupted.safetensors; a second one quits at once (completed
epochs' checkpoints stay). A closed stdout (| head) stops the run the same way.

Examples:
  $ st-native train
  $ st-native train --preset cifar10-resnet18-st
  $ st-native train --set method.name=trades --epochs 5
  $ st-native train --resume runs/my-run --epochs 20
  $ st-native train --seeds 5 --name st-5-seeds

Exit codes: 0 done, 1 failed, 2 invalid config or usage, 130 Ctrl-C,
143 SIGTERM, 129 SIGHUP, 141 stdout closed.`,
    )
    .action(async (options) => {
      const args = {
        preset: options.preset,
        config: options.config,
        // --data-dir is shorthand for --set dataset.dataDir=DIR (as JSON, so any path stays a string).
        set: [...(options.set ?? []), ...(options.dataDir !== undefined ? [`dataset.dataDir=${JSON.stringify(options.dataDir)}`] : [])],
        epochs: options.epochs,
        device: options.device,
        runsDir: options.runsDir,
        resume: options.resume,
        name: options.name,
        json: Boolean(options.json),
      };
      if (options.parallel !== undefined && options.seeds === undefined) {
        throw new ConfigError([{ path: '--parallel', message: 'only with --seeds (or in `st-native sweep`): one run trains in one process' }]);
      }
      ctx.exit(
        options.seeds !== undefined
          ? await seedsCommand({ ...args, seeds: options.seeds, parallel: options.parallel, report: options.report }, ctx.io)
          : await trainCommand({ ...args, report: options.report }, ctx.io),
      );
    });
}
