/** The `st-native` command line: argument parsing and dispatch only. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { findPreset, presets } from '../config/presets.js';
import { resolveConfig } from '../config/resolve.js';
import { loadNative, nativeStatus } from '../native.js';
import { didYouMean } from '../suggest.js';
import { setInvocation } from '../experiment/provenance.js';
import { EXIT, report, UsageError } from './errors.js';
import { dataCommand } from './data.js';
import { doctorCommand } from './doctor.js';
import { evalCommand, evalOptions } from './eval.js';
import { setupCommand } from './setup.js';
import { trainCommand } from './train.js';
import { usage } from './usage.js';
import { versionLine } from '../runtime/version.js';

interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
  tty: boolean;
  outputClosed?: AbortSignal;
}

const COMMANDS = ['train', 'eval', 'models', 'presets', 'setup', 'doctor', 'data'];

type OptionValues = Record<string, string | boolean | (string | boolean)[] | undefined>;

/**
 * `--n -1` as `--n=-1`: node's parser reads a value that starts with `-` as
 * an option ("argument is ambiguous"); a negative number is a value, which
 * the option's own check then refuses or takes with a message naming it.
 */
function joinNegativeValues(args: string[], options: NonNullable<ParseArgsConfig['options']>): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const next = args[i + 1];
    const name = arg.startsWith('--') ? arg.slice(2) : null;
    if (name !== null && options[name]?.type === 'string' && next !== undefined && /^-(\d|\.\d)/.test(next)) {
      out.push(`${arg}=${next}`);
      i++;
    } else {
      out.push(arg);
    }
  }
  return out;
}

/** Strict parsing: an unknown option is a usage error (exit 2), not ignored. */
function parse(
  args: string[],
  options: NonNullable<ParseArgsConfig['options']>,
  positionals = false,
): { values: OptionValues; positionals: string[] } {
  try {
    const parsed = parseArgs({ args: joinNegativeValues(args, options), options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: positionals, strict: true });
    return { values: parsed.values as OptionValues, positionals: parsed.positionals };
  } catch (e) {
    const err = e as Error & { code?: string };
    const unknown = /Unknown option '(-{1,2}[^']+)'/.exec(err.message);
    if (err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && unknown) {
      const names = Object.keys(options).map((o) => `--${o}`);
      throw new UsageError(`Unknown option '${unknown[1]}'${didYouMean(unknown[1]!, names, '')}`);
    }
    throw new UsageError(err.message);
  }
}

function modelsCommand(argv: string[], io: Io): number {
  const { values } = parse(argv, { json: { type: 'boolean' } });
  if (values.help) return io.out(usage.models), EXIT.ok;
  // Parameter counts for CIFAR-10/SVHN-sized and CIFAR-100-sized heads.
  const native = loadNative();
  const [ten, hundred] = [native.listModels(10), native.listModels(100)];
  const models = ten.map((m) => ({
    name: m.name,
    description: m.description,
    inputShape: m.inputShape,
    parameters: { '10': m.parameters, '100': hundred.find((h) => h.name === m.name)!.parameters },
  }));
  if (values.json) return io.out(JSON.stringify(models)), EXIT.ok;
  const width = Math.max(4, ...models.map((m) => m.name.length));
  const count = (n: number) => n.toLocaleString('en-US').padStart(11);
  io.out(`${'name'.padEnd(width)} ${'input'.padEnd(9)} ${'10 classes'.padStart(11)} ${'100 classes'.padStart(11)}  description`);
  for (const m of models) {
    io.out(`${m.name.padEnd(width)} ${m.inputShape.join('x').padEnd(9)} ${count(m.parameters['10'])} ${count(m.parameters['100'])}  ${m.description}`);
  }
  io.out('(trainable parameters for 10 and 100 classes)');
  return EXIT.ok;
}

function presetsCommand(argv: string[], io: Io): number {
  const { values, positionals } = parse(argv, { json: { type: 'boolean' } }, true);
  if (values.help) return io.out(usage.presets), EXIT.ok;
  if (positionals.length > 0) {
    // `presets show NAME`: the fully resolved config the preset trains with.
    if (positionals[0] !== 'show' || positionals.length !== 2) throw new UsageError('expected `presets` or `presets show NAME`');
    const config = resolveConfig({ preset: positionals[1] });
    if (values.json) return io.out(JSON.stringify(config)), EXIT.ok;
    io.out(`${positionals[1]}: ${findPreset(positionals[1]!)!.description}`);
    io.out(JSON.stringify(config, null, 2));
    return EXIT.ok;
  }
  if (values.json) return io.out(JSON.stringify(presets)), EXIT.ok;
  const width = Math.max(...presets.map((p) => p.name.length)) + 2;
  for (const p of presets) io.out(`${p.name.padEnd(width)} ${p.description}`);
  return EXIT.ok;
}

export async function main(argv: string[], io: Io): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case undefined:
      case '-h':
      case '--help':
      case 'help':
        io.out(usage.main);
        return command === undefined ? EXIT.usage : EXIT.ok;
      case '--version':
      case '-V':
      case 'version': {
        const status = nativeStatus();
        io.out(versionLine(status.runtime?.libtorchVersion ?? null));
        return EXIT.ok;
      }
      case 'train': {
        const { values } = parse(rest, {
          preset: { type: 'string' },
          config: { type: 'string' },
          set: { type: 'string', multiple: true },
          epochs: { type: 'string' },
          device: { type: 'string' },
          'runs-dir': { type: 'string' },
          resume: { type: 'string' },
          'data-dir': { type: 'string' },
          name: { type: 'string' },
          json: { type: 'boolean' },
        });
        if (values.help) return io.out(usage.train), EXIT.ok;
        return await trainCommand(
          {
            preset: values.preset as string | undefined,
            config: values.config as string | undefined,
            // --data-dir is shorthand for --set dataset.dataDir=DIR (as JSON, so any path stays a string).
            set: [
              ...((values.set as string[] | undefined) ?? []),
              ...(values['data-dir'] !== undefined ? [`dataset.dataDir=${JSON.stringify(values['data-dir'])}`] : []),
            ],
            epochs: values.epochs as string | undefined,
            device: values.device as string | undefined,
            runsDir: values['runs-dir'] as string | undefined,
            resume: values.resume as string | undefined,
            name: values.name as string | undefined,
            json: Boolean(values.json),
          },
          io,
        );
      }
      case 'eval': {
        const { values, positionals } = parse(rest, evalOptions, true);
        if (values.help) return io.out(usage.eval), EXIT.ok;
        return await evalCommand(values, positionals, io);
      }
      case 'models':
        return modelsCommand(rest, io);
      case 'presets':
        return presetsCommand(rest, io);
      case 'setup':
        return await setupCommand(rest, io);
      case 'doctor':
        return await doctorCommand(rest, io);
      case 'data':
        return await dataCommand(rest, io);
      default:
        throw new UsageError(`unknown command "${command}"${didYouMean(command, COMMANDS)}; expected one of ${COMMANDS.join(', ')}`);
    }
  } catch (e) {
    return report(e, io.err);
  }
}

/**
 * Entry point used by bin/st-native.js. A reader that closes our stdout
 * (`| head`) is a normal end of a pipeline: writes stop, `train` stops its
 * run cleanly, and no EPIPE trace is printed.
 */
export async function run(): Promise<void> {
  const outputClosed = new AbortController();
  // EPIPE first, then ERR_STREAM_DESTROYED for writes already queued: any
  // stdout error means the output is gone.
  process.stdout.on('error', () => outputClosed.abort());
  // Nowhere left to report a failing stderr to; never crash over it.
  process.stderr.on('error', () => undefined);
  const io: Io = {
    out: (s) => {
      if (!outputClosed.signal.aborted) process.stdout.write(`${s}\n`);
    },
    err: (s) => {
      if (!process.stderr.destroyed) process.stderr.write(`${s}\n`);
    },
    tty: Boolean(process.stdout.isTTY) && !process.env.CI,
    outputClosed: outputClosed.signal,
  };
  setInvocation(process.argv.slice(2));
  process.exitCode = await main(process.argv.slice(2), io);
}
