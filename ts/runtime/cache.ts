/**
 * Where st-native keeps per-user files: the libtorch that `st-native setup`
 * installs, and (later) downloaded datasets. XDG folders through env-paths,
 * each overridable by one environment variable.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import envPaths from 'env-paths';

/** The libtorch version tch 0.24 is built against: exactly this one loads. */
export const LIBTORCH_VERSION = '2.11.0';

/** `cpu`: libtorch without its CUDA libraries; `cuda`: the full PyPI torch with them. */
export type Flavor = 'cpu' | 'cuda';
export const FLAVORS: readonly Flavor[] = ['cuda', 'cpu'];

// No '-nodejs' suffix: the folder is st-native's, whichever runtime asks.
const xdg = () => envPaths('st-native', { suffix: '' });

/** `$ST_NATIVE_CACHE_DIR`, else `$XDG_CACHE_HOME/st-native`, else `~/.cache/st-native`. */
export function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const override = env.ST_NATIVE_CACHE_DIR;
  return override ? path.resolve(override) : xdg().cache;
}

/** `$ST_NATIVE_DATA_DIR`, else `$XDG_DATA_HOME/st-native`, else `~/.local/share/st-native`. */
export function dataDir(env: NodeJS.ProcessEnv = process.env): string {
  const override = env.ST_NATIVE_DATA_DIR;
  return override ? path.resolve(override) : xdg().data;
}

/**
 * `<cache>/libtorch-2.11.0-<flavor>`: laid out as a `pip install --target`
 * tree (also when setup extracts the wheels itself), so
 * `torch/lib` sits two levels below `nvidia/cu13/lib`, where the wheel's
 * RPATH (`$ORIGIN/../../nvidia/cu13/lib`) looks for libcudart and libcupti.
 */
export function libtorchInstallDir(flavor: Flavor, cache: string = cacheDir()): string {
  return path.join(cache, `libtorch-${LIBTORCH_VERSION}-${flavor}`);
}

/** `st-native setup` failed; the message says why and what to do. */
export class SetupError extends Error {
  override name = 'SetupError';
  readonly code = 'ERR_SETUP';
}

/** The marker a completed install carries; written last, so its presence means "complete". */
export const MARKER_FILE = 'st-native-libtorch.json';

export interface InstallMarker {
  /** libtorch version without the local suffix, e.g. "2.11.0". */
  version: string;
  flavor: Flavor;
  /** torch's own version string, e.g. "2.11.0+cu130". */
  torchVersion: string;
  /** Packages installed, as `name==version`. */
  packages: string[];
  installedAt: string;
  /** `wheels`: extracted from wheels fetched directly; `pip`: installed with pip. Absent in older markers (pip). */
  method?: 'wheels' | 'pip';
}

export function writeMarker(dir: string, marker: InstallMarker): void {
  writeFileSync(path.join(dir, MARKER_FILE), `${JSON.stringify(marker, null, 2)}\n`);
}

/** The marker of `dir`, or null when there is none or it is not one of ours. */
export function readMarker(dir: string): InstallMarker | null {
  const file = path.join(dir, MARKER_FILE);
  if (!existsSync(file)) return null;
  try {
    const m = JSON.parse(readFileSync(file, 'utf8')) as Partial<InstallMarker>;
    if (typeof m.version !== 'string' || (m.flavor !== 'cpu' && m.flavor !== 'cuda') || typeof m.torchVersion !== 'string') return null;
    return {
      version: m.version,
      flavor: m.flavor,
      torchVersion: m.torchVersion,
      packages: Array.isArray(m.packages) ? m.packages.filter((p): p is string => typeof p === 'string') : [],
      installedAt: typeof m.installedAt === 'string' ? m.installedAt : '',
      ...(m.method === 'wheels' || m.method === 'pip' ? { method: m.method } : {}),
    };
  } catch {
    return null;
  }
}

/** `/home/u/.cache/x` -> `~/.cache/x`, for messages only. */
export function tildify(p: string, home: string | undefined = process.env.HOME): string {
  return home && home !== '/' && (p === home || p.startsWith(`${home}/`)) ? `~${p.slice(home.length)}` : p;
}

/**
 * `<cache>/downloads`: wheels being fetched by `setup` (`.part` files a
 * rerun resumes); emptied once an install completes.
 */
export function downloadsDir(cache: string = cacheDir()): string {
  return path.join(cache, 'downloads');
}
