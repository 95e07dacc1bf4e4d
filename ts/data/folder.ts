/**
 * The data folder and what is in it. Each downloadable dataset has its own
 * sub-folder holding the official files as downloaded. A file is only ever
 * put under its final name after its MD5 matched (downloads go to
 * `<file>.part` first); a `<file>.verified` stamp next to it records the
 * size and mtime it was verified at, so later loads skip re-hashing. A file
 * without a matching stamp (copied in by hand, or changed since) is hashed
 * again before it is used.
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, lstatSync, openSync, readFileSync, readSync, renameSync, rmSync, statSync, writeFileSync, type Stats } from 'node:fs';
import path from 'node:path';
import { dataDir } from '../runtime/cache.js';
import { DatasetError } from './errors.js';
import type { DatasetSource, RemoteFile } from './sources.js';
import type { Environment } from '../environment.js';

/**
 * The data folder: an explicit one (the `--data-dir` flag or the config's
 * `dataset.dataDir`) wins, then `$ST_NATIVE_DATA_DIR`, then the XDG default
 * (`$XDG_DATA_HOME/st-native`, else `~/.local/share/st-native`).
 */
export function resolveDataDir(explicit?: string | null, env: Environment = process.env): string {
  return explicit ? path.resolve(explicit) : dataDir(env);
}

export function datasetFolder(root: string, source: DatasetSource): string {
  return path.join(root, source.folder);
}

export const partPath = (file: string) => `${file}.part`;
export const stampPath = (file: string) => `${file}.verified`;

/** MD5 of a file, read in 4 MiB pieces (never the whole file in memory). */
export function md5FileSync(file: string): string {
  const hash = createHash('md5');
  const buf = Buffer.allocUnsafe(4 << 20);
  const fd = openSync(file, 'r');
  try {
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      hash.update(buf.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}

interface Stamp {
  md5: string;
  bytes: number;
  mtimeMs: number;
}

/** Records that `file` (as it is now) has the MD5 `md5`; best effort. */
export function writeStamp(file: string, md5: string): void {
  try {
    const st = statSync(file);
    const tmp = `${stampPath(file)}.tmp-${process.pid}`;
    writeFileSync(tmp, `${JSON.stringify({ md5, bytes: st.size, mtimeMs: st.mtimeMs } satisfies Stamp)}\n`);
    renameSync(tmp, stampPath(file));
  } catch {
    /* only an optimisation: the next load hashes the file again */
  }
}

function stampMatches(file: string, remote: RemoteFile, size: number, mtimeMs: number): boolean {
  try {
    const s = JSON.parse(readFileSync(stampPath(file), 'utf8')) as Partial<Stamp>;
    return s.md5 === remote.md5 && s.bytes === size && s.mtimeMs === mtimeMs;
  } catch {
    return false;
  }
}

/**
 * - `verified`: there, and its MD5 matched (now or per its stamp)
 * - `unverified`: there, not checked yet (only when not asked to verify)
 * - `corrupt`: there, but its MD5 is not the published one
 * - `partial`: only an interrupted download (`.part`) is there
 * - `missing`: nothing there
 */
export type FileState = 'verified' | 'unverified' | 'corrupt' | 'partial' | 'missing';

export interface FileStatus {
  name: string;
  path: string;
  state: FileState;
  /** Bytes on disk: the file's, or for `partial` the `.part`'s; null when missing. */
  bytes: number | null;
  expectedBytes: number;
  md5: string;
  url: string;
}

/** What a non-regular entry is, in words ("a folder", "a symbolic link to a character device"). */
function entryKind(st: Stats): string {
  if (st.isDirectory()) return 'a folder';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isFIFO()) return 'a named pipe';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

/**
 * Something other than a file where a dataset file belongs (a folder, a link
 * to a device, a broken link): an error naming what is there, rather than
 * "missing" (which would send the user to put a file where one cannot go).
 */
function inTheWay(file: string, remote: RemoteFile): DatasetError | null {
  let link: Stats;
  try {
    link = lstatSync(file);
  } catch {
    return null; // nothing there
  }
  let target: Stats | null = null;
  try {
    target = statSync(file);
  } catch {
    /* a broken link */
  }
  if (target?.isFile()) return null;
  const what = link.isSymbolicLink() ? (target ? `a symbolic link to ${entryKind(target).replace(/^not a regular file$/, 'something that is not a regular file')}` : 'a broken symbolic link') : entryKind(link);
  return new DatasetError(file, `is ${what}, not the downloaded file ${remote.name}; move it away, then put the file there (as downloaded, ${remote.bytes.toLocaleString('en-US')} bytes) or run \`st-native data fetch\``);
}

export function fileStatus(folder: string, remote: RemoteFile, verify: boolean): FileStatus {
  const file = path.join(folder, remote.name);
  const base = { name: remote.name, path: file, expectedBytes: remote.bytes, md5: remote.md5, url: remote.url };
  const blocked = inTheWay(file, remote);
  if (blocked) throw blocked;
  let st: ReturnType<typeof statSync> | undefined;
  try {
    st = statSync(file);
  } catch {
    st = undefined;
  }
  if (st?.isFile()) {
    if (stampMatches(file, remote, st.size, st.mtimeMs)) return { ...base, state: 'verified', bytes: st.size };
    if (!verify) return { ...base, state: 'unverified', bytes: st.size };
    let sum: string;
    try {
      sum = md5FileSync(file);
    } catch (e) {
      throw new DatasetError(file, `cannot read (${(e as Error).message})`);
    }
    if (sum !== remote.md5) return { ...base, state: 'corrupt', bytes: st.size };
    writeStamp(file, sum);
    return { ...base, state: 'verified', bytes: st.size };
  }
  if (existsSync(partPath(file))) {
    let bytes: number | null = null;
    try {
      bytes = statSync(partPath(file)).size;
    } catch {
      /* raced away */
    }
    return { ...base, state: 'partial', bytes };
  }
  return { ...base, state: 'missing', bytes: null };
}

/**
 * A dataset's state: `verified` when every file is, `missing` when nothing
 * (not even a partial download) is there, `corrupt` when a file fails its
 * checksum, `unverified` when all are there and some not yet checked, else
 * `partial`.
 */
export type DatasetState = 'verified' | 'unverified' | 'corrupt' | 'partial' | 'missing';

export interface DatasetStatus {
  name: string;
  state: DatasetState;
  folder: string;
  files: FileStatus[];
}

export function datasetStatus(source: DatasetSource, root: string, verify: boolean): DatasetStatus {
  const folder = datasetFolder(root, source);
  const files = source.files.map((f) => fileStatus(folder, f, verify));
  const all = (s: FileState) => files.every((f) => f.state === s);
  const state: DatasetState = all('verified')
    ? 'verified'
    : all('missing')
      ? 'missing'
      : files.some((f) => f.state === 'corrupt')
        ? 'corrupt'
        : files.every((f) => f.state === 'verified' || f.state === 'unverified')
          ? 'unverified'
          : 'partial';
  return { name: source.dataset, state, folder, files };
}

/** Removes a stale verification stamp (the file it vouched for is being replaced). */
export function dropStamp(file: string): void {
  rmSync(stampPath(file), { force: true });
}
