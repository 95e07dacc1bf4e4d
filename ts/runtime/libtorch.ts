/**
 * Finds libtorch 2.11.0 at run time and pre-loads it, so the prebuilt addon
 * (which carries no rpath) resolves its NEEDED libtorch entries by soname.
 *
 * Why pre-loading: the dynamic loader reads LD_LIBRARY_PATH once, at process
 * start, so a library path chosen later cannot be handed to it; opening the
 * libraries by absolute path with RTLD_GLOBAL first is what PyTorch itself
 * does before importing its extension.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cacheDir, FLAVORS, LIBTORCH_VERSION, libtorchInstallDir, readMarker, tildify } from './cache.js';
import type { Environment } from '../environment.js';

/** What each place searched held: accepted when `reason` is null. */
export interface LibtorchCandidate {
  /** Where it came from, e.g. `ST_NATIVE_LIBTORCH`, `python3 (/usr/bin/python3)`, `cache`. */
  source: string;
  /** The folder looked at, or null when there was none to look at (a variable not set). */
  path: string | null;
  /** The libtorch version found there (e.g. "2.11.0+cu130"), when one was read. */
  version: string | null;
  /** Why it does not qualify; null for the one chosen. */
  reason: string | null;
}

export interface LibtorchFound {
  ok: true;
  /** The folder holding libc10.so, libtorch_cpu.so, ... */
  libDir: string;
  /** As libtorch states it, e.g. "2.11.0+cu130". */
  version: string;
  source: string;
  /** libtorch_cuda.so is present (whether it loads is decided by preloadLibtorch). */
  cudaLibs: boolean;
  /** Every place looked at, up to and including the chosen one. */
  tried: LibtorchCandidate[];
}

export interface LibtorchMissing {
  ok: false;
  tried: LibtorchCandidate[];
  error: LibtorchError;
}

/** libtorch is absent, of the wrong version, or does not load. */
export class LibtorchError extends Error {
  readonly code = 'ERR_LIBTORCH';
  readonly tried: LibtorchCandidate[];
  constructor(message: string, tried: LibtorchCandidate[] = []) {
    super(message);
    this.name = 'LibtorchError';
    this.tried = tried;
  }
}

export const SETUP_COMMAND = 'npx st-native setup';

/** Loaded in this order: each needs the ones before it. */
export const CPU_LIBRARIES = ['libc10.so', 'libtorch_cpu.so'] as const;
export const CUDA_LIBRARIES = ['libc10_cuda.so', 'libtorch_cuda.so'] as const;

/** dist/ts/runtime/libtorch.js -> the package root, where a clone's .venv lives. */
export const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

export interface FindOptions {
  env?: Environment;
  /** Where to look for `.venv` (default: this package's root). */
  packageRoot?: string;
  /** The st-native cache folder (default: cacheDir(env)). */
  cache?: string;
  /** Milliseconds the Python probe may take (default 10 s). */
  pythonTimeoutMs?: number;
}

/** The version a libtorch folder states: `build-version` (libtorch zip) or `version.py` (Python torch). */
export function readLibtorchVersion(top: string): string | null {
  const buildVersion = path.join(top, 'build-version');
  if (existsSync(buildVersion)) return readFileSync(buildVersion, 'utf8').trim() || null;
  const versionPy = path.join(top, 'version.py');
  if (existsSync(versionPy)) {
    const m = /^__version__\s*=\s*['"]([^'"]+)['"]/m.exec(readFileSync(versionPy, 'utf8'));
    return m ? m[1]! : null;
  }
  return null;
}

/** "2.11.0+cu130" -> "2.11.0". */
export const baseVersion = (v: string) => v.split('+')[0]!;

type Inspected = { candidate: LibtorchCandidate; found: Omit<LibtorchFound, 'tried'> | null };

/**
 * Checks one folder: a libtorch root (holding lib/) or its lib/ folder
 * itself, as PyTorch's `torch/` and libtorch's zip both are laid out.
 */
export function inspectLibtorchDir(dir: string, source: string): Inspected {
  const reject = (reason: string, version: string | null = null): Inspected => ({ candidate: { source, path: dir, version, reason }, found: null });
  if (!existsSync(dir)) return reject('does not exist');
  let libDir: string;
  if (existsSync(path.join(dir, 'lib', 'libtorch_cpu.so'))) libDir = path.join(dir, 'lib');
  else if (existsSync(path.join(dir, 'libtorch_cpu.so'))) libDir = dir;
  else return reject(`no libtorch_cpu.so in it or in its lib/`);
  const missing = CPU_LIBRARIES.filter((lib) => !existsSync(path.join(libDir, lib)));
  if (missing.length) return reject(`${missing.join(', ')} missing from ${libDir}`);
  const version = readLibtorchVersion(path.dirname(libDir));
  if (!version) return reject(`cannot tell its version (no build-version or version.py next to ${path.basename(libDir)}/)`);
  if (baseVersion(version) !== LIBTORCH_VERSION) return reject(`libtorch ${version}; st-native needs ${LIBTORCH_VERSION}`, version);
  return {
    candidate: { source, path: dir, version, reason: null },
    found: { ok: true, libDir, version, source, cudaLibs: existsSync(path.join(libDir, 'libtorch_cuda.so')) },
  };
}

// Asks Python where torch is without importing it: `import torch` fails
// where its CUDA libraries are absent, and costs seconds where they are not.
const PYTHON_PROBE = [
  'import importlib.util, json, sys',
  "s = importlib.util.find_spec('torch')",
  'loc = list(s.submodule_search_locations or []) if s else []',
  "print(json.dumps({'executable': sys.executable, 'torch': loc[0] if loc else None}))",
].join('\n');

function probePython(python: string, source: string, timeoutMs: number, env: Environment): Inspected {
  try {
    const out = execFileSync(python, ['-c', PYTHON_PROBE], { encoding: 'utf8', timeout: timeoutMs, stdio: ['ignore', 'pipe', 'pipe'], env });
    const { executable, torch } = JSON.parse(out.trim().split('\n').pop()!) as { executable: string; torch: string | null };
    const label = `${source} (${executable})`;
    if (!torch) return { candidate: { source: label, path: null, version: null, reason: 'has no torch module' }, found: null };
    return inspectLibtorchDir(torch, label);
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { signal?: string; stderr?: string };
    const reason =
      err.code === 'ENOENT'
        ? `not found${python.includes('/') ? '' : ' on PATH'}`
        : err.signal === 'SIGTERM' || err.code === 'ETIMEDOUT'
          ? `did not answer within ${timeoutMs / 1000} s`
          : `failed: ${(err.stderr ?? err.message).trim().split('\n').pop()}`;
    return { candidate: { source, path: null, version: null, reason }, found: null };
  }
}

/** A clone's `npm install` provisions `.venv`; its torch is found without running Python. */
function inspectVenv(root: string): Inspected {
  const venv = path.join(root, '.venv');
  const source = 'project .venv';
  const libRoot = path.join(venv, 'lib');
  if (!existsSync(libRoot)) return { candidate: { source, path: venv, version: null, reason: 'not present' }, found: null };
  const torchDirs = readdirSync(libRoot)
    .filter((d) => d.startsWith('python'))
    .map((d) => path.join(libRoot, d, 'site-packages', 'torch'))
    .filter((d) => existsSync(d));
  if (!torchDirs.length) return { candidate: { source, path: venv, version: null, reason: 'has no torch' }, found: null };
  return inspectLibtorchDir(torchDirs[0]!, source);
}

function inspectCache(dir: string): Inspected {
  const source = 'cache';
  if (!existsSync(dir)) return { candidate: { source, path: dir, version: null, reason: 'not installed' }, found: null };
  const marker = readMarker(dir);
  if (!marker) return { candidate: { source, path: dir, version: null, reason: `incomplete install (no marker); rerun \`${SETUP_COMMAND} --force\`` }, found: null };
  const inspected = inspectLibtorchDir(path.join(dir, 'torch'), `cache (${tildify(dir)})`);
  return { ...inspected, candidate: { ...inspected.candidate, path: dir } };
}

/**
 * Looks, in order, at: ST_NATIVE_LIBTORCH, LIBTORCH, the torch of
 * ST_NATIVE_PYTHON (else python3), this package's .venv, then the cache's
 * CUDA and CPU installs. The first libtorch 2.11.0 wins; every place looked
 * at is recorded so a failure can say what was where.
 */
export function findLibtorch(options: FindOptions = {}): LibtorchFound | LibtorchMissing {
  const env = options.env ?? process.env;
  const cache = options.cache ?? cacheDir(env);
  const tried: LibtorchCandidate[] = [];
  const steps: (() => Inspected)[] = [
    ...(['ST_NATIVE_LIBTORCH', 'LIBTORCH'] as const).map((name) => (): Inspected => {
      const value = env[name];
      return value
        ? inspectLibtorchDir(path.resolve(value), name)
        : { candidate: { source: name, path: null, version: null, reason: 'not set' }, found: null };
    }),
    () => {
      const python = env.ST_NATIVE_PYTHON;
      return probePython(python || 'python3', python ? `ST_NATIVE_PYTHON=${python}` : 'python3', options.pythonTimeoutMs ?? 10_000, env);
    },
    () => inspectVenv(options.packageRoot ?? packageRoot),
    ...FLAVORS.map((flavor) => () => inspectCache(libtorchInstallDir(flavor, cache))),
  ];
  for (const step of steps) {
    const { candidate, found } = step();
    tried.push(candidate);
    if (found) return { ...found, tried };
  }
  return { ok: false, tried, error: new LibtorchError(notFoundMessage(tried, cache), tried) };
}

/** `ST_NATIVE_LIBTORCH=/x`, `cache ~/.cache/...`: the source, then the folder unless the source names it. */
export function candidateLabel(c: LibtorchCandidate): string {
  if (!c.path || c.source.includes(c.path) || c.source.includes(tildify(c.path))) return c.source;
  return `${c.source}${/^[A-Z_]+$/.test(c.source) ? '=' : ' '}${tildify(c.path)}`;
}

function describe(c: LibtorchCandidate): string {
  return `  - ${candidateLabel(c)}: ${c.reason ?? `libtorch ${c.version}`}`;
}

/** The closing lines of every libtorch error: what to do, ending with the command. */
export function fixLines(cache: string = cacheDir()): string {
  return [
    `Set ST_NATIVE_LIBTORCH to a libtorch ${LIBTORCH_VERSION} folder, or install one into ${tildify(cache)} with:`,
    `  ${SETUP_COMMAND}`,
  ].join('\n');
}

/**
 * ST_NATIVE_LIBTORCH set to a folder that holds no usable libtorch: the
 * search passes over it, so every command says so in these words (doctor,
 * the loader's warning, the not-found error). Null when unset or usable.
 */
export function ignoredLibtorchVariable(tried: readonly LibtorchCandidate[]): { problem: string; fix: string } | null {
  const c = tried.find((x) => x.source === 'ST_NATIVE_LIBTORCH' && x.path !== null && x.reason !== null);
  if (!c) return null;
  return { problem: `ST_NATIVE_LIBTORCH=${c.path} is ignored: ${c.reason}`, fix: `point ST_NATIVE_LIBTORCH at a libtorch ${LIBTORCH_VERSION} folder, or unset it` };
}

function notFoundMessage(tried: LibtorchCandidate[], cache: string): string {
  const ignored = ignoredLibtorchVariable(tried);
  return [
    ...(ignored ? [`${ignored.problem} (${ignored.fix}).`] : []),
    `libtorch ${LIBTORCH_VERSION} not found. Looked at:`,
    ...tried.map(describe),
    fixLines(cache),
  ].join('\n');
}

/** An NVIDIA kernel driver is loaded (the files exist without any CUDA library installed). */
export function nvidiaDriverPresent(root = '/'): boolean {
  return existsSync(path.join(root, 'proc', 'driver', 'nvidia')) || existsSync(path.join(root, 'dev', 'nvidiactl'));
}

export interface PreloadOptions {
  /** `auto`: load libtorch_cuda where it and a driver are present; `off`: CPU only. */
  cuda?: 'auto' | 'off';
  /** Filesystem root for the driver check (tests). */
  root?: string;
  /** For messages: the cache folder `setup` would fill. */
  cache?: string;
}

export interface PreloadResult {
  cuda: boolean;
  /** Why CUDA is off; absent when it is on. */
  cudaError?: string;
  /** Absolute paths opened, in order. */
  loaded: string[];
}

export type DlopenGlobal = (path: string) => void;

function dlMessage(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).trim();
}

/** A hint for the dlerror texts we know how to fix. */
function loadHint(dlerror: string): string | null {
  if (/libcudart\.so|libcupti\.so/.test(dlerror)) {
    return "PyTorch's PyPI wheel needs libcudart.so.13 and libcupti.so.13 in nvidia/cu13/lib two folders above torch/lib (pip packages nvidia-cuda-runtime and nvidia-cuda-cupti).";
  }
  if (/undefined symbol|version `/.test(dlerror)) {
    return `This libtorch is built differently from the PyTorch ${LIBTORCH_VERSION} release (or a different libtorch is already loaded in this process).`;
  }
  return null;
}

/**
 * Opens libtorch's libraries with RTLD_NOW | RTLD_GLOBAL through
 * `dlopenGlobal`. The CPU libraries must load (else a LibtorchError saying
 * what was found where); the CUDA ones are tried where present and a driver
 * is there, and their failure only turns CUDA off.
 *
 * libtorch.so is opened last and never required: the addon does not link it
 * (its symbols live in libtorch_cpu/libtorch_cuda), and the PyPI wheel's
 * libtorch.so NEEDS libtorch_cuda.so, so it cannot load on a CPU install.
 * Measured on the PyPI wheel with only nvidia-cuda-runtime and
 * nvidia-cuda-cupti beside it: libc10.so and libtorch_cpu.so load, and an
 * addon linked to just those two trains; libtorch.so and libtorch_cuda.so
 * fail on libcusparse.so.12.
 */
export function preloadLibtorch(found: LibtorchFound, dlopenGlobal: DlopenGlobal, options: PreloadOptions = {}): PreloadResult {
  const loaded: string[] = [];
  for (const lib of CPU_LIBRARIES) {
    const file = path.join(found.libDir, lib);
    try {
      dlopenGlobal(file);
      loaded.push(file);
    } catch (e) {
      const dlerror = dlMessage(e);
      const hint = loadHint(dlerror);
      throw new LibtorchError(
        [
          `libtorch ${found.version} found at ${found.libDir} (from ${found.source}), but ${lib} could not be loaded: ${dlerror}`,
          ...(hint ? [hint] : []),
          fixLines(options.cache),
        ].join('\n'),
        found.tried,
      );
    }
  }
  let cudaError: string | undefined;
  if (options.cuda === 'off') cudaError = 'turned off (cuda: off)';
  else if (!found.cudaLibs) cudaError = `no libtorch_cuda.so in ${found.libDir}: a CPU-only libtorch (\`${SETUP_COMMAND} --cuda\` installs the CUDA one)`;
  else if (!nvidiaDriverPresent(options.root)) cudaError = 'no NVIDIA driver (neither /proc/driver/nvidia nor /dev/nvidiactl exists)';
  else {
    for (const lib of CUDA_LIBRARIES) {
      const file = path.join(found.libDir, lib);
      try {
        dlopenGlobal(file);
        loaded.push(file);
      } catch (e) {
        cudaError = `${lib} could not be loaded: ${dlMessage(e)}`;
        break;
      }
    }
  }
  // With CUDA present but off, libtorch.so would pull libtorch_cuda.so in
  // through its NEEDED entry: leave it out then.
  const libtorch = path.join(found.libDir, 'libtorch.so');
  if (existsSync(libtorch) && (cudaError === undefined || !found.cudaLibs)) {
    try {
      dlopenGlobal(libtorch);
      loaded.push(libtorch);
    } catch {
      // Expected on a CPU install of the PyPI wheel (see above); nothing needs it.
    }
  }
  return cudaError === undefined ? { cuda: true, loaded } : { cuda: false, cudaError, loaded };
}
