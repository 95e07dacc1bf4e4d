/** `st-native presets [show NAME]`: the named presets and what one resolves to. */
import { Command, type CommandUnknownOpts } from '@commander-js/extra-typings';
import { findPreset, presets } from '../../config/presets.js';
import { resolveConfig } from '../../config/resolve.js';
import type { CliContext } from '../context.js';
import { EXIT } from '../errors.js';

export function presetsProgram(ctx: CliContext): CommandUnknownOpts {
  const list = new Command('presets')
    .description('list the named presets, or show the config one trains with')
    .option('--json', 'print as JSON')
    .addHelpText(
      'after',
      `
Each preset is a small override of the base config: the paper's settings
(CIFAR-10/100, SVHN; ResNet-18, WRN-34-10, WRN-34-5; ST and PGD-AT) and quick
MNIST ones. The default is mnist-st-quick.

Examples:
  $ st-native presets
  $ st-native presets show cifar10-resnet18-st`,
    )
    .action((options) => {
      ctx.exit(EXIT.ok);
      if (options.json) return ctx.io.out(JSON.stringify(presets));
      const width = Math.max(...presets.map((p) => p.name.length)) + 2;
      for (const p of presets) ctx.io.out(`${p.name.padEnd(width)} ${p.description}`);
    });
  list
    .command('show')
    .description('print the fully resolved config a preset trains with')
    .argument('<name>', 'a preset name')
    .option('--json', 'print as JSON')
    .action((name, options, command) => {
      // `presets --json show NAME` counts too.
      const json = options.json ?? command.parent?.opts().json;
      const config = resolveConfig({ preset: name });
      ctx.exit(EXIT.ok);
      if (json) return ctx.io.out(JSON.stringify(config));
      ctx.io.out(`${name}: ${findPreset(name)!.description}`);
      ctx.io.out(JSON.stringify(config, null, 2));
    });
  return list;
}
