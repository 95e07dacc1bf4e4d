/** `st-native models`: the registered architectures with parameter counts. */
import { Command, type CommandUnknownOpts } from '@commander-js/extra-typings';
import { loadNative } from '../../native.js';
import type { CliContext } from '../context.js';
import { EXIT } from '../errors.js';

export function modelsProgram(ctx: CliContext): CommandUnknownOpts {
  return new Command('models')
    .description('list the available models with parameter counts')
    .option('--json', 'print the list as JSON')
    .addHelpText('after', '\nLists the models the native core registers: name, input shape, parameter\ncounts for 10 and 100 classes, and description. Needs the built addon.')
    .action((options) => {
      const { io } = ctx;
      // Parameter counts for CIFAR-10/SVHN-sized and CIFAR-100-sized heads.
      const native = loadNative();
      const [ten, hundred] = [native.listModels(10), native.listModels(100)];
      const models = ten.map((m) => ({
        name: m.name,
        description: m.description,
        inputShape: m.inputShape,
        parameters: { '10': m.parameters, '100': hundred.find((h) => h.name === m.name)!.parameters },
      }));
      ctx.exit(EXIT.ok);
      if (options.json) return io.out(JSON.stringify(models));
      const width = Math.max(4, ...models.map((m) => m.name.length));
      const count = (n: number) => n.toLocaleString('en-US').padStart(11);
      io.out(`${'name'.padEnd(width)} ${'input'.padEnd(9)} ${'10 classes'.padStart(11)} ${'100 classes'.padStart(11)}  description`);
      for (const m of models) {
        io.out(`${m.name.padEnd(width)} ${m.inputShape.join('x').padEnd(9)} ${count(m.parameters['10'])} ${count(m.parameters['100'])}  ${m.description}`);
      }
      io.out('(trainable parameters for 10 and 100 classes)');
    });
}
