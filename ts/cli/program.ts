/**
 * The command tree of `st-native`, on commander: parsing, help, "did you
 * mean" for commands and options, and usage errors all come from it. Each
 * command's options and help live in ./commands/, its work beside them.
 */
import { Command, CommanderError } from '@commander-js/extra-typings';
import { nativeStatus } from '../native.js';
import { packageVersion, versionLine } from '../runtime/version.js';
import type { CliContext } from './context.js';
import { helpWidth, reflow } from './reflow.js';
import { completionProgram } from './commands/completion.js';
import { dataProgram } from './commands/data.js';
import { doctorProgram } from './commands/doctor.js';
import { evalProgram } from './commands/eval.js';
import { modelsProgram } from './commands/models.js';
import { presetsProgram } from './commands/presets.js';
import { runsProgram } from './commands/runs.js';
import { reportProgram } from './commands/report.js';
import { setupProgram } from './commands/setup.js';
import { sweepProgram } from './commands/sweep.js';
import { trainProgram } from './commands/train.js';

export const EXIT_CODES_HELP = `Exit codes: 0 done, 1 failed, 2 usage or configuration (a device this machine
lacks included), 130/143/129 interrupted by Ctrl-C/SIGTERM/SIGHUP, 141 stdout
closed.`;

export function buildProgram(ctx: CliContext, width = helpWidth()): Command {
  const program = new Command('st-native')
    .description('adversarial training (Squeeze Training, ICLR 2023) on a Rust/libtorch core')
    .usage('<command> [options]')
    .option('-V, --version', 'the version, the clone\'s git commit, libtorch and Node')
    .addHelpText(
      'after',
      `
Misspelt commands, options, presets, attacks and config fields are refused
with the closest valid name.
${EXIT_CODES_HELP}

Examples:
  $ st-native train
  $ st-native eval runs/my-run --attacks aa
  $ st-native help eval
  $ source <(st-native completion bash)`,
    );
  // --version is computed when asked: it reads libtorch's version and git.
  program.on('option:version', () => {
    ctx.io.out(versionLine(nativeStatus().runtime?.libtorchVersion ?? null));
    throw new CommanderError(0, 'st-native.version', packageVersion());
  });
  for (const make of [trainProgram, sweepProgram, runsProgram, evalProgram, reportProgram, modelsProgram, presetsProgram, setupProgram, doctorProgram, dataProgram, completionProgram]) {
    program.addCommand(make(ctx));
  }
  configure(program, ctx, width);
  return program;
}

/** The same output, errors and suggestions on every command of the tree. */
function configure(command: Command, ctx: CliContext, width: number): void {
  command
    .exitOverride()
    .showSuggestionAfterError(true)
    .showHelpAfterError('(see --help)')
    .helpOption('-h, --help', 'this help')
    .configureHelp({ helpWidth: width, minWidthToWrap: 20, sortSubcommands: false })
    .configureOutput({
      // Commander lays out usage and options to the width; the notes after
      // them are written at 80 columns and re-filled here.
      writeOut: (s) => ctx.io.out(s.startsWith('Usage:') ? s.replace(/\n$/, '') : reflow(s.replace(/\n$/, ''), width)),
      writeErr: (s) => ctx.io.err(s.replace(/\n$/, '')),
      outputError: (s, write) => write(s),
    });
  if (command.commands.length > 0) command.helpCommand('help [command]', "a command's help");
  for (const sub of command.commands) configure(sub as Command, ctx, width);
}
