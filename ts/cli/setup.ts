/**
 * `st-native setup [--cpu | --cuda] [--pip] [--force] [--json]`: installs
 * libtorch 2.11.0 from PyPI into the per-user cache, where findLibtorch
 * looks for it. By default without Python: the wheels are fetched through
 * the index's JSON API and only their shared libraries extracted
 * (ts/runtime/wheel.ts); `--pip` (or ST_NATIVE_SETUP=pip) installs with
 * Python's pip instead.
 *
 * Interrupt-safe: both install into `<cache>/.tmp-<pid>-<random>/target`,
 * the completion marker is written last, and only then is the folder renamed
 * into place; a later run removes temp folders whose process is gone.
 * Downloaded wheels wait in `<cache>/downloads` (a cut one as `.part`, which
 * the next run resumes) and are deleted once the install is in place.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { DownloadTuning } from '../data/download.js';
import { stderrProgress, type ProgressOutput } from '../data/progress.js';
import { locate, platformSuffix } from '../native-loader.js';
import {
  cacheDir,
  downloadsDir,
  LIBTORCH_VERSION,
  libtorchInstallDir,
  readMarker,
  SetupError,
  tildify,
  writeMarker,
  type Flavor,
  type InstallMarker,
} from '../runtime/cache.js';
import { findLibtorch, inspectLibtorchDir, nvidiaDriverPresent, readLibtorchVersion } from '../runtime/libtorch.js';
import { hostPlatform, pypiBaseUrl, type WheelPlatform } from '../runtime/pypi.js';
import { CUDA_ONLY_LIBRARIES, installWheels } from '../runtime/wheel.js';
import { EXIT, UsageError } from './errors.js';

export { CUDA_ONLY_LIBRARIES };

interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
}

export interface FlavorChoice {
  flavor: Flavor;
  why: string;
}

/** `--cpu`/`--cuda` when given; otherwise CUDA exactly where an NVIDIA driver is loaded. */
export function chooseFlavor(requested: Flavor | undefined, root = '/'): FlavorChoice {
  if (requested) return { flavor: requested, why: `--${requested} given` };
  return nvidiaDriverPresent(root)
    ? { flavor: 'cuda', why: 'an NVIDIA driver is present (/proc/driver/nvidia or /dev/nvidiactl); --cpu installs the CPU-only set instead' }
    : { flavor: 'cpu', why: 'no NVIDIA driver on this host (no /proc/driver/nvidia, no /dev/nvidiactl); --cuda installs the CUDA libraries anyway' };
}

/**
 * What pip installs. `cuda`: torch with all its dependencies (about 2.7 GB to
 * download, 4.7 GB on disk). `cpu`: the torch wheel alone plus the two small
 * CUDA libraries its libtorch_cpu.so NEEDS (libcudart.so.13, libcupti.so.13:
 * what `cuda-toolkit[cudart,cupti]==13.0.2` resolves to, pinned here because
 * `--no-deps` cannot take extras), about 0.55 GB to download. Python's
 * `import torch` does not work on the `cpu` set (libtorch_python.so needs the
 * CUDA libraries); st-native does not need it.
 */
export const PIP_INSTALLS: Record<Flavor, { args: string[]; download: string }> = {
  cuda: { args: [`torch==${LIBTORCH_VERSION}`], download: 'about 2.7 GB to download, 4.7 GB on disk' },
  cpu: {
    args: ['--no-deps', `torch==${LIBTORCH_VERSION}`, 'cuda-toolkit==13.0.2', 'nvidia-cuda-runtime==13.0.96', 'nvidia-cuda-cupti==13.0.85'],
    download: 'about 0.55 GB to download, 0.7 GB on disk',
  },
};

/**
 * What the direct install downloads and keeps, measured with PyPI's wheels
 * (cp314, x86_64): `cpu` 4 wheels, 0.54 GB, 0.50 GB on disk; `cuda` 17
 * wheels, 2.51 GB, 3.76 GB on disk (pip keeps 4.7: headers, Python files,
 * static archives). The wheels wait in <cache>/downloads until the install
 * is in place, so the peak is the sum.
 */
export const WHEEL_SIZES: Record<Flavor, string> = {
  cuda: 'about 2.5 GB to download, 3.8 GB on disk',
  cpu: 'about 0.55 GB to download, 0.5 GB on disk',
};

/** How setup installs: `wheels` (default) fetches and extracts them itself; `pip` runs Python's pip. */
export type SetupMethod = 'wheels' | 'pip';

/** `--pip` wins; else ST_NATIVE_SETUP (`pip` or `wheels`); else `wheels`. */
export function chooseMethod(pipFlag: boolean, env: NodeJS.ProcessEnv = process.env): SetupMethod {
  if (pipFlag) return 'pip';
  const v = env.ST_NATIVE_SETUP?.trim().toLowerCase();
  if (!v || v === 'wheels') return 'wheels';
  if (v === 'pip') return 'pip';
  throw new UsageError(`ST_NATIVE_SETUP must be 'wheels' or 'pip', not '${env.ST_NATIVE_SETUP}'`);
}

/** Files a working install of `flavor` has, relative to its folder. */
export function requiredFiles(flavor: Flavor): string[] {
  const files = ['torch/lib/libc10.so', 'torch/lib/libtorch_cpu.so', 'torch/lib/libtorch.so', 'nvidia/cu13/lib/libcudart.so.13', 'nvidia/cu13/lib/libcupti.so.13'];
  return flavor === 'cuda' ? [...files, 'torch/lib/libc10_cuda.so', 'torch/lib/libtorch_cuda.so', 'nvidia/cudnn/lib/libcudnn.so.9'] : files;
}

export interface InstallStatus {
  complete: boolean;
  marker: InstallMarker | null;
  /** Why it is not complete. */
  problems: string[];
}

/** Whether `dir` holds a finished install of `flavor` of libtorch 2.11.0. */
export function installStatus(dir: string, flavor: Flavor): InstallStatus {
  if (!existsSync(dir)) return { complete: false, marker: null, problems: ['not installed'] };
  const marker = readMarker(dir);
  const problems: string[] = [];
  if (!marker) problems.push('no completion marker (an interrupted or foreign install)');
  else {
    if (marker.version !== LIBTORCH_VERSION) problems.push(`marker says libtorch ${marker.version}`);
    if (marker.flavor !== flavor) problems.push(`marker says flavour ${marker.flavor}`);
  }
  for (const f of requiredFiles(flavor)) if (!existsSync(path.join(dir, f))) problems.push(`${f} missing`);
  return { complete: problems.length === 0, marker, problems };
}

export type SetupPlan =
  | { action: 'skip'; flavor: Flavor; dir: string; why: string }
  | { action: 'install'; flavor: Flavor; dir: string; why: string; replace: boolean };

/**
 * A completed install is kept unless --force. Without an explicit flavour, a
 * CUDA install also serves a CPU-only host, so it is not duplicated.
 */
export function planSetup(choice: FlavorChoice, explicit: boolean, force: boolean, cache: string): SetupPlan {
  const dir = libtorchInstallDir(choice.flavor, cache);
  const status = installStatus(dir, choice.flavor);
  if (force) return { action: 'install', flavor: choice.flavor, dir, why: '--force given', replace: existsSync(dir) };
  if (status.complete) return { action: 'skip', flavor: choice.flavor, dir, why: `libtorch ${LIBTORCH_VERSION} (${choice.flavor}) is already installed` };
  if (!explicit && choice.flavor === 'cpu') {
    const cudaDir = libtorchInstallDir('cuda', cache);
    if (installStatus(cudaDir, 'cuda').complete) {
      return { action: 'skip', flavor: 'cuda', dir: cudaDir, why: `the CUDA install of libtorch ${LIBTORCH_VERSION} is there and runs on CPU too` };
    }
  }
  return { action: 'install', flavor: choice.flavor, dir, why: status.problems.join('; '), replace: existsSync(dir) };
}

const TMP_PREFIX = '.tmp-';

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Where a setup records its pip's pid: pip outlives a setup killed with SIGKILL. */
const PIP_PID_FILE = 'pip.pid';

/**
 * Removes `<cache>/.tmp-<pid>-*` folders left by setups that died, unless
 * their pip still runs (it would go on writing there); returns what it removed.
 */
export function removeStaleTempDirs(cache: string, isAlive: (pid: number) => boolean = pidAlive): string[] {
  if (!existsSync(cache)) return [];
  const removed: string[] = [];
  for (const name of readdirSync(cache)) {
    const m = /^\.tmp-(\d+)-/.exec(name);
    if (!m || Number(m[1]) === process.pid || isAlive(Number(m[1]))) continue;
    const dir = path.join(cache, name);
    let pipPid = NaN;
    try {
      pipPid = Number(readFileSync(path.join(dir, PIP_PID_FILE), 'utf8'));
    } catch {
      // No pip was started, or its pid was never written.
    }
    if (Number.isInteger(pipPid) && pipPid > 0 && isAlive(pipPid)) continue;
    try {
      rmSync(dir, { recursive: true, force: true });
      removed.push(name);
    } catch {
      // Another setup may be removing it too; the next run tries again.
    }
  }
  return removed;
}

/** Bytes under `dir` (apparent sizes; symlinks not followed). */
export function folderBytes(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    total += entry.isDirectory() ? folderBytes(p) : lstatSync(p).size;
  }
  return total;
}

const gb = (bytes: number) => `${(bytes / 1e9).toFixed(2)} GB`;

const PYTHON_HELP =
  'st-native setup uses pip to fetch PyTorch\'s libtorch: install Python 3.10-3.14 with pip (e.g. `apt-get install python3-pip`), or point ST_NATIVE_PYTHON at one.';

/** The Python to run pip with, checked: its absolute path and version. */
function checkPython(python: string): { executable: string; version: string } {
  try {
    const out = execFileSync(python, ['-c', 'import sys, pip; print(sys.executable); print("%d.%d" % sys.version_info[:2])'], {
      encoding: 'utf8',
      timeout: 30_000,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const [executable, version] = out.trim().split('\n');
    const [major, minor] = version!.split('.').map(Number);
    if (major !== 3 || minor! < 10) throw new SetupError(`${python} is Python ${version}; PyTorch ${LIBTORCH_VERSION} has wheels for Python 3.10-3.14. ${PYTHON_HELP}`);
    return { executable: executable!, version: version! };
  } catch (e) {
    if (e instanceof SetupError) throw e;
    const err = e as NodeJS.ErrnoException & { stderr?: string };
    if (err.code === 'ENOENT') throw new SetupError(`${python} not found. ${PYTHON_HELP}`);
    const why = (err.stderr ?? err.message).trim().split('\n').pop() ?? '';
    throw new SetupError(`${python} cannot run pip (${why}). ${PYTHON_HELP}`);
  }
}

/** Runs pip with its output on our stderr; resolves with its exit code, or the signal that stopped us. */
function runPip(python: string, args: string[], env: NodeJS.ProcessEnv, pidFile: string): Promise<{ code: number | null; interrupted: NodeJS.Signals | null }> {
  return new Promise((resolve, reject) => {
    // pip's output goes to stderr so that stdout carries only the result (--json).
    const child = spawn(python, ['-m', 'pip', ...args], { stdio: ['ignore', 2, 2], env });
    if (child.pid !== undefined) writeFileSync(pidFile, String(child.pid));
    let interrupted: NodeJS.Signals | null = null;
    // Ctrl-C reaches pip too (same process group); wait for it to stop, so
    // the temp folder can be removed once nothing writes to it any more.
    const onSignal = (signal: NodeJS.Signals) => {
      interrupted = signal;
      child.kill(signal);
    };
    const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
    for (const s of signals) process.on(s, onSignal);
    const done = () => signals.forEach((s) => process.off(s, onSignal));
    child.on('error', (e) => {
      done();
      reject(e);
    });
    child.on('close', (code) => {
      done();
      resolve({ code, interrupted });
    });
  });
}

/** Loads the installed libraries through Python's ctypes: the same dlopen the addon's loader does. */
function verifyLoads(python: string, libs: string[]): string | null {
  const script = 'import ctypes, sys\nfor p in sys.argv[1:]:\n    ctypes.CDLL(p, mode=ctypes.RTLD_GLOBAL)';
  try {
    execFileSync(python, ['-c', script, ...libs], { encoding: 'utf8', timeout: 120_000, stdio: ['ignore', 'pipe', 'pipe'] });
    return null;
  } catch (e) {
    const err = e as Error & { stderr?: string };
    return (err.stderr ?? err.message).trim().split('\n').pop() ?? 'failed';
  }
}

export interface SetupResult {
  ok: true;
  flavor: Flavor;
  /** How it was installed (for a kept install: how it had been). */
  method: SetupMethod;
  why: string;
  dir: string;
  torchVersion: string;
  alreadyInstalled: boolean;
  bytes: number;
  seconds: number;
  /** The libtorch st-native will load now (an earlier place in the search order may win). */
  willUse: { source: string; libDir: string } | null;
}

const SIGNAL_EXIT: Record<string, number> = { SIGINT: EXIT.interrupted, SIGTERM: EXIT.terminated, SIGHUP: EXIT.hangup };

type InstallPlan = Extract<SetupPlan, { action: 'install' }>;
type Installed = { torchVersion: string; packages: string[] } | { signal: NodeJS.Signals };

/** A fresh `<cache>/.tmp-<pid>-<random>` folder; removeStaleTempDirs knows the pattern. */
function workDir(cache: string): string {
  mkdirSync(cache, { recursive: true });
  const work = path.join(cache, `${TMP_PREFIX}${process.pid}-${randomBytes(4).toString('hex')}`);
  mkdirSync(work);
  return work;
}

/**
 * Puts a finished `target` (marker written) in place of `plan.dir`, moving
 * an install being replaced aside into `work` first.
 */
function moveIntoPlace(plan: InstallPlan, target: string, work: string): void {
  const old = path.join(work, 'old');
  const movedOld = plan.replace && existsSync(plan.dir);
  if (movedOld) renameSync(plan.dir, old);
  try {
    renameSync(target, plan.dir);
  } catch (e) {
    // Another setup finished the same install meanwhile: keep theirs.
    const code = (e as NodeJS.ErrnoException).code;
    if ((code === 'ENOTEMPTY' || code === 'EEXIST') && installStatus(plan.dir, plan.flavor).complete) return;
    if (movedOld && !existsSync(plan.dir)) renameSync(old, plan.dir);
    throw e;
  }
}

/** Checks a finished `target`: its torch version and the files a working install has. */
function checkTarget(target: string, flavor: Flavor, what: string): string {
  const torchVersion = readLibtorchVersion(path.join(target, 'torch'));
  if (!torchVersion) throw new SetupError(`${what} put no torch/version.py into ${target}`);
  const missing = requiredFiles(flavor).filter((f) => !existsSync(path.join(target, f)));
  if (missing.length) throw new SetupError(`the install lacks ${missing.join(', ')}`);
  return torchVersion;
}

/** The libraries a load check opens, in order: each needs the ones before it. */
const checkedLibraries = (flavor: Flavor) => ['libc10.so', 'libtorch_cpu.so', ...(flavor === 'cuda' ? ['libc10_cuda.so', 'libtorch_cuda.so'] : [])];

/** The addon's preload shim (a .node file that links no libtorch), or null where it is not installed. */
export function preloadShim(): string | null {
  const suffix = platformSuffix();
  if (!suffix) return null;
  try {
    const file = path.join(locate(suffix).dir, `st-native-preload.${suffix}.node`);
    return existsSync(file) ? file : null;
  } catch {
    return null;
  }
}

/**
 * Opens `libs` in order with RTLD_NOW | RTLD_GLOBAL in a child Node through
 * the preload shim, the same dlopen st-native does at run time (a child, so
 * this process stays free of libtorch). Resolves with the dlerror, or null
 * when they all load.
 */
export function verifyLoadsWithShim(shim: string, libs: string[]): string | null {
  const script = 'const s = require(process.argv[1]); for (const f of process.argv.slice(2)) s.dlopenGlobal(f);';
  const r = spawnSync(process.execPath, ['-e', script, shim, ...libs], { encoding: 'utf8', timeout: 120_000, stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.status === 0) return null;
  if (r.error) return r.error.message;
  const lines = (r.stderr ?? '').split('\n').map((l) => l.trim());
  return lines.find((l) => /^Error:/.test(l))?.replace(/^Error:\s*/, '') ?? lines.filter(Boolean).pop() ?? `exit code ${r.status}`;
}

/** Runs `fn` with an AbortSignal that Ctrl-C (or SIGTERM/SIGHUP) fires; reports which signal did. */
async function interruptible<T>(fn: (signal: AbortSignal) => Promise<T>): Promise<T | { signal: NodeJS.Signals }> {
  const ctrl = new AbortController();
  let caught: NodeJS.Signals | null = null;
  const onSignal = (s: NodeJS.Signals) => {
    caught = s;
    ctrl.abort(new Error(`interrupted by ${s}`));
  };
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const s of signals) process.on(s, onSignal);
  try {
    return await fn(ctrl.signal);
  } catch (e) {
    if (caught) return { signal: caught };
    throw e;
  } finally {
    for (const s of signals) process.off(s, onSignal);
  }
}

/** Test hooks and tuning for the direct (wheels) install. */
export interface WheelHooks {
  /** The host as wheel tags describe it (default: this process's). */
  platform?: WheelPlatform;
  progress?: ProgressOutput | null;
  tuning?: Partial<DownloadTuning>;
  /** false: skip opening the libraries (fake wheels in tests hold no real ones). */
  loadCheck?: boolean;
}

async function installFromWheels(plan: InstallPlan, cache: string, io: Io, env: NodeJS.ProcessEnv, hooks: WheelHooks): Promise<Installed> {
  const platform = hooks.platform ?? hostPlatform();
  if (!platform) throw new SetupError(`PyTorch's Linux wheels run on x86_64 and aarch64 with glibc; this is ${process.platform}-${process.arch}`);
  const work = workDir(cache);
  const target = path.join(work, 'target');
  const downloads = downloadsDir(cache);
  const progress = hooks.progress === undefined ? { line: io.err } : hooks.progress;
  try {
    const done = await interruptible(async (signal) => {
      const r = await installWheels(target, {
        flavor: plan.flavor,
        index: { base: pypiBaseUrl(env), signal },
        platform,
        downloads,
        progress,
        signal,
        ...(hooks.tuning ? { tuning: hooks.tuning } : {}),
      });
      return r;
    });
    if ('signal' in done) return done;
    const torchVersion = checkTarget(target, plan.flavor, 'the torch wheel');
    const libDir = path.join(target, 'torch', 'lib');
    const libs = checkedLibraries(plan.flavor);
    const shim = hooks.loadCheck === false ? null : preloadShim();
    if (shim) {
      io.err(`checking that ${libs.join(', ')} load ...`);
      const loadError = verifyLoadsWithShim(shim, libs.map((l) => path.join(libDir, l)));
      if (loadError) throw new SetupError(`the installed libtorch does not load: ${loadError}`);
    } else if (hooks.loadCheck !== false) {
      io.err('not checking that the libraries load: the addon (and its preload shim) is not installed here; `st-native doctor` checks it');
    }
    // Written last: its presence is what makes the install complete.
    writeMarker(target, { version: LIBTORCH_VERSION, flavor: plan.flavor, torchVersion, packages: done.packages, installedAt: new Date().toISOString(), method: 'wheels' });
    moveIntoPlace(plan, target, work);
    // The wheels are not needed any more (gigabytes for --cuda).
    for (const f of done.files) rmSync(f, { force: true });
    try {
      rmdirSync(downloads);
    } catch {
      // Not empty (another setup's download) or already gone.
    }
    return { torchVersion, packages: done.packages };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

async function installWithPip(plan: InstallPlan, cache: string, io: Io): Promise<Installed> {
  const python = checkPython(process.env.ST_NATIVE_PYTHON || 'python3');
  const work = workDir(cache);
  const target = path.join(work, 'target');
  // pip unpacks into TMPDIR before moving into --target: keep that on the
  // cache's filesystem (a tmpfs /tmp may not hold 4.7 GB) and inside `work`.
  const pipTmp = path.join(work, 'pip-tmp');
  mkdirSync(pipTmp);
  const { args } = PIP_INSTALLS[plan.flavor];
  try {
    io.err(`running ${python.executable} -m pip install --target ${tildify(target)} ${args.join(' ')}`);
    const pipArgs = ['install', '--no-input', '--disable-pip-version-check', '--only-binary=:all:', '--no-compile', '--no-warn-script-location', '--target', target, ...args];
    const { code, interrupted } = await runPip(python.executable, pipArgs, { ...process.env, TMPDIR: pipTmp, PIP_ROOT_USER_ACTION: 'ignore' }, path.join(work, PIP_PID_FILE));
    if (interrupted) return { signal: interrupted };
    if (code !== 0) throw new SetupError(`pip failed (exit code ${code}); its output is above. Nothing was installed; rerun \`st-native setup\` when the cause is fixed.`);
    if (plan.flavor === 'cpu') for (const lib of CUDA_ONLY_LIBRARIES) rmSync(path.join(target, 'torch', 'lib', lib), { force: true });
    const torchVersion = checkTarget(target, plan.flavor, 'pip');
    const libDir = path.join(target, 'torch', 'lib');
    const libs = checkedLibraries(plan.flavor);
    io.err(`checking that ${libs.join(', ')} load ...`);
    const loadError = verifyLoads(python.executable, libs.map((l) => path.join(libDir, l)));
    if (loadError) throw new SetupError(`the installed libtorch does not load: ${loadError}`);
    const packages = args.filter((a) => !a.startsWith('-'));
    // Written last: its presence is what makes the install complete.
    writeMarker(target, { version: LIBTORCH_VERSION, flavor: plan.flavor, torchVersion, packages, installedAt: new Date().toISOString(), method: 'pip' });
    rmSync(pipTmp, { recursive: true, force: true });
    moveIntoPlace(plan, target, work);
    return { torchVersion, packages };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/**
 * ST_NATIVE_OFFLINE set: what setup would download, and the ways to a
 * libtorch without downloading here.
 */
function offlineError(plan: InstallPlan, method: SetupMethod, env: NodeJS.ProcessEnv): SetupError {
  const from = method === 'pip' ? 'with pip from PyPI' : `from ${pypiBaseUrl(env)}`;
  return new SetupError(
    [
      `libtorch ${LIBTORCH_VERSION} (${plan.flavor}) is not in ${tildify(plan.dir)}, and installing it failed (downloads are off: ST_NATIVE_OFFLINE is set).`,
      `setup would fetch torch==${LIBTORCH_VERSION}${plan.flavor === 'cuda' ? ' and the NVIDIA library wheels it pins' : ', nvidia-cuda-runtime and nvidia-cuda-cupti'} ${from} (${method === 'pip' ? PIP_INSTALLS[plan.flavor].download : WHEEL_SIZES[plan.flavor]}).`,
      `Without a network here: copy ${libtorchInstallDir(plan.flavor, '<cache>')} from a machine where \`st-native setup --${plan.flavor}\` ran into ${tildify(path.dirname(plan.dir))}${path.sep},`,
      `or point ST_NATIVE_LIBTORCH at a libtorch ${LIBTORCH_VERSION} folder; or unset ST_NATIVE_OFFLINE and run \`st-native setup\` where there is a network.`,
    ].join('\n'),
  );
}

export interface SetupOptions {
  flavor?: Flavor;
  force: boolean;
  /** Default: chooseMethod(false, env). */
  method?: SetupMethod;
  root?: string;
  cache?: string;
  /** ST_NATIVE_PYPI_URL, ST_NATIVE_OFFLINE (default: process.env). */
  env?: NodeJS.ProcessEnv;
  wheels?: WheelHooks;
}

export async function runSetup(options: SetupOptions, io: Io): Promise<SetupResult | { signal: NodeJS.Signals }> {
  const started = Date.now();
  const env = options.env ?? process.env;
  const method = options.method ?? chooseMethod(false, env);
  const cache = options.cache ?? cacheDir(env);
  const choice = chooseFlavor(options.flavor, options.root);
  const removed = removeStaleTempDirs(cache);
  if (removed.length) io.err(`removed ${removed.length} unfinished install folder(s) left by an interrupted setup`);
  const plan = planSetup(choice, options.flavor !== undefined, options.force, cache);
  io.err(`flavour ${choice.flavor}: ${choice.why}`);
  let torchVersion: string;
  let usedMethod = method;
  if (plan.action === 'skip') {
    io.err(`${plan.why} in ${tildify(plan.dir)} (--force reinstalls)`);
    const marker = readMarker(plan.dir);
    torchVersion = marker?.torchVersion ?? LIBTORCH_VERSION;
    usedMethod = marker?.method ?? 'pip';
  } else {
    if (env.ST_NATIVE_OFFLINE) throw offlineError(plan, method, env);
    const how = method === 'pip' ? 'with pip' : 'from its wheels, without Python';
    io.err(`installing libtorch ${LIBTORCH_VERSION} (${plan.flavor}: ${method === 'pip' ? PIP_INSTALLS[plan.flavor].download : WHEEL_SIZES[plan.flavor]}) ${how} into ${tildify(plan.dir)}`);
    const done = method === 'pip' ? await installWithPip(plan, cache, io) : await installFromWheels(plan, cache, io, env, options.wheels ?? {});
    if ('signal' in done) return done;
    torchVersion = done.torchVersion;
  }
  // The cache entry itself must qualify; then say which libtorch a run will load.
  const own = inspectLibtorchDir(path.join(plan.dir, 'torch'), 'cache');
  if (!own.found) throw new SetupError(`${plan.dir} does not qualify after installing: ${own.candidate.reason}`);
  const found = findLibtorch({ cache, env });
  return {
    ok: true,
    flavor: plan.flavor,
    method: usedMethod,
    why: plan.action === 'skip' ? plan.why : choice.why,
    dir: plan.dir,
    torchVersion,
    alreadyInstalled: plan.action === 'skip',
    bytes: folderBytes(plan.dir),
    seconds: (Date.now() - started) / 1000,
    willUse: found.ok ? { source: found.source, libDir: found.libDir } : null,
  };
}

export async function setupCommand(values: { cpu?: boolean; cuda?: boolean; pip?: boolean; force?: boolean; json?: boolean }, io: Io): Promise<number> {
  if (values.cpu && values.cuda) throw new UsageError('--cpu and --cuda exclude each other');
  const method = chooseMethod(Boolean(values.pip));
  // A terminal gets redrawn download bars; logs and pipes get a line per 10 %.
  const progress = process.stderr.isTTY ? stderrProgress() : { line: io.err };
  const result = await runSetup({ flavor: values.cpu ? 'cpu' : values.cuda ? 'cuda' : undefined, force: Boolean(values.force), method, wheels: { progress } }, io);
  if ('signal' in result) {
    io.err(
      method === 'pip'
        ? 'setup interrupted: nothing was installed (rerun `st-native setup` to start again)'
        : `setup interrupted: nothing was installed; what was downloaded is kept in ${tildify(downloadsDir())} (rerun \`st-native setup\` to resume)`,
    );
    return SIGNAL_EXIT[result.signal] ?? EXIT.failed;
  }
  if (values.json) return io.out(JSON.stringify(result)), EXIT.ok;
  io.out(
    `libtorch ${result.torchVersion} (${result.flavor}) ${result.alreadyInstalled ? 'already in' : 'installed in'} ${tildify(result.dir)}: ${gb(result.bytes)}` +
      (result.alreadyInstalled ? '' : `, ${result.seconds.toFixed(0)} s`),
  );
  if (result.willUse && !result.willUse.libDir.startsWith(result.dir)) {
    io.out(`note: st-native loads ${result.willUse.libDir} (from ${result.willUse.source}) first: it comes earlier in the search order`);
  }
  return EXIT.ok;
}
