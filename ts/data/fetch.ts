/**
 * Fetching a dataset into the data folder, and the message for when that
 * cannot be done (offline): which files, from where, into which folder.
 */
import { existsSync, readdirSync, rmdirSync } from 'node:fs';
import path from 'node:path';
import { tildify } from '../runtime/cache.js';
import { DownloadError, downloadFile, type DownloadTuning } from './download.js';
import { DatasetError } from './errors.js';
import { datasetFolder, datasetStatus, fileStatus, resolveDataDir } from './folder.js';
import { stderrProgress, type ProgressOutput } from './progress.js';
import { OFFICIAL_SOURCES, type DatasetSource, type DatasetSources, type DownloadableName, type RemoteFile } from './sources.js';
import type { Environment } from '../environment.js';

export interface FetchOptions {
  /** The data folder (flag or config); null: $ST_NATIVE_DATA_DIR, else the XDG default. */
  dataDir?: string | null;
  env?: Environment;
  /** Where each dataset's files come from (tests point this at a local server). */
  sources?: DatasetSources;
  /** Progress and notes; default: stderr. null: silent. */
  progress?: ProgressOutput | null;
  signal?: AbortSignal;
  tuning?: Partial<DownloadTuning>;
}

export interface FetchedFile {
  name: string;
  path: string;
  bytes: number;
  md5: string;
  /** false: it was already there, verified. */
  downloaded: boolean;
  seconds: number;
}

export interface FetchResult {
  name: DownloadableName;
  folder: string;
  files: FetchedFile[];
}

const grouped = (n: number) => n.toLocaleString('en-US');

/**
 * ERR_DATASET_MISSING: the files are not in the folder (and, with `reason`,
 * downloading them failed). Names each file with its URL, size and MD5, the
 * folder to put them in, and the other ways to get there.
 */
export function missingError(source: DatasetSource, folder: string, files: readonly RemoteFile[], reason: string | null): DatasetError {
  const list = files.length ? files : source.files;
  const width = Math.max(...list.map((f) => f.name.length));
  return new DatasetError(
    source.dataset,
    [
      reason
        ? `not in ${tildify(folder)}, and downloading it failed (${reason}).`
        : `not downloaded yet: ${list.map((f) => f.name).join(' and ')} ${list.length > 1 ? 'are' : 'is'} not in ${tildify(folder)}.`,
      `Put ${list.length > 1 ? 'these files' : 'this file'} in ${folder}${path.sep} (as downloaded, not unpacked):`,
      ...list.map((f) => `  ${f.name.padEnd(width)}  ${f.url}  (${grouped(f.bytes)} bytes, md5 ${f.md5})`),
      `or run \`st-native data fetch ${source.dataset}\` where there is a network.`,
      'Another data folder: --data-dir, the config\'s dataset.dataDir, or ST_NATIVE_DATA_DIR.',
    ].join('\n'),
    'ERR_DATASET_MISSING',
  );
}

/**
 * Downloads whatever of the dataset is not there yet (or fails its MD5),
 * resuming interrupted downloads. A file already there is verified, not
 * downloaded again.
 */
export async function fetchDataset(name: DownloadableName, options: FetchOptions = {}): Promise<FetchResult> {
  const source = (options.sources ?? OFFICIAL_SOURCES)[name];
  const root = resolveDataDir(options.dataDir, options.env);
  const folder = datasetFolder(root, source);
  const offline = offlineReason(options.env);
  if (offline !== null) {
    // Nothing to download is fine offline (the files are checked); anything else stops before a request.
    const absent = datasetStatus(source, root, false).files.filter((f) => f.state !== 'verified' && f.state !== 'unverified');
    if (absent.length > 0) throw missingError(source, folder, source.files.filter((f) => absent.some((a) => a.name === f.name)), offline);
  }
  // Folders this fetch makes are removed again if it fails and leaves them empty.
  const made = [root, folder].filter((dir) => !existsSync(dir));
  try {
    return await fetchInto(name, source, root, folder, options);
  } catch (e) {
    for (const dir of made.reverse()) removeIfEmpty(dir);
    throw e;
  }
}

/** `ST_NATIVE_OFFLINE` set (to anything but 0 or nothing): why downloads are off, else null. */
export function offlineReason(env: Environment = process.env): string | null {
  const value = env.ST_NATIVE_OFFLINE;
  return value && value !== '0' ? 'downloads are off: ST_NATIVE_OFFLINE is set' : null;
}

function removeIfEmpty(dir: string): void {
  try {
    if (readdirSync(dir).length === 0) rmdirSync(dir);
  } catch {
    /* gone already, or not ours to judge: leave it */
  }
}

async function fetchInto(name: DownloadableName, source: DatasetSource, root: string, folder: string, options: FetchOptions): Promise<FetchResult> {
  const progress = options.progress === undefined ? stderrProgress(options.env) : options.progress;
  const files: FetchedFile[] = [];
  for (const remote of source.files) {
    const started = Date.now();
    const status = fileStatus(folder, remote, true);
    if (status.state === 'verified') {
      progress?.line(`${remote.name}: already there, md5 verified (${status.path})`);
      files.push({ name: remote.name, path: status.path, bytes: status.bytes ?? remote.bytes, md5: remote.md5, downloaded: false, seconds: 0 });
      continue;
    }
    const offline = offlineReason(options.env);
    if (offline !== null) throw missingError(source, folder, [remote], offline);
    if (status.state === 'corrupt') progress?.line(`${remote.name}: the file there fails its md5 check; downloading it again`);
    try {
      await downloadFile(remote, status.path, { signal: options.signal, progress, ...options.tuning });
    } catch (e) {
      if (e instanceof DownloadError) {
        const missing = datasetStatus(source, root, false).files.filter((f) => f.state !== 'verified' && f.state !== 'unverified');
        throw missingError(source, folder, source.files.filter((f) => missing.some((m) => m.name === f.name)), e.message);
      }
      throw e;
    }
    files.push({ name: remote.name, path: status.path, bytes: remote.bytes, md5: remote.md5, downloaded: true, seconds: (Date.now() - started) / 1000 });
  }
  return { name, folder, files };
}

/**
 * Makes sure the dataset's files are in the data folder, downloading the
 * missing ones first. Offline, rejects with ERR_DATASET_MISSING (files,
 * URLs, folder). Files already there are verified when loaded.
 * `ST_NATIVE_OFFLINE=1` turns the download off (air-gapped machines, tests):
 * the same error comes at once, here and from `fetchDataset`.
 */
export async function ensureDataset(name: DownloadableName, options: FetchOptions = {}): Promise<void> {
  const source = (options.sources ?? OFFICIAL_SOURCES)[name];
  const status = datasetStatus(source, resolveDataDir(options.dataDir, options.env), false);
  const absent = status.files.filter((f) => f.state !== 'verified' && f.state !== 'unverified');
  if (absent.length === 0) return;
  // fetchDataset refuses offline with the same error, naming the absent files.
  await fetchDataset(name, options);
}
