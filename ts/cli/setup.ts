/**
 * `st-native setup [--cpu | --cuda] [--force] [--json]`: installs libtorch
 * 2.11.0 from PyPI into the per-user cache with pip, where findLibtorch
 * looks for it.
 *
 * Interrupt-safe: pip installs into `<cache>/.tmp-<pid>-<random>/target`,
 * the completion marker is written last, and only then is the folder renamed
 * into place; a later run removes temp folders whose process is gone.
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  cacheDir,
  LIBTORCH_VERSION,
  libtorchInstallDir,
  readMarker,
  tildify,
  writeMarker,
  type Flavor,
  type InstallMarker,
} from '../runtime/cache.js';
import { findLibtorch, inspectLibtorchDir, nvidiaDriverPresent, readLibtorchVersion } from '../runtime/libtorch.js';
import { EXIT, UsageError } from './errors.js';

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

/** In the torch wheel but useless without the CUDA libraries: removed from `cpu` installs (about 0.5 GB). */
export const CUDA_ONLY_LIBRARIES = ['libtorch_cuda.so', 'libtorch_cuda_linalg.so', 'libc10_cuda.so', 'libtorch_nvshmem.so', 'libcaffe2_nvrtc.so'];

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

class SetupError extends Error {
  readonly code = 'ERR_SETUP';
}

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

async function install(plan: Extract<SetupPlan, { action: 'install' }>, cache: string, io: Io): Promise<{ torchVersion: string } | { signal: NodeJS.Signals }> {
  const python = checkPython(process.env.ST_NATIVE_PYTHON || 'python3');
  mkdirSync(cache, { recursive: true });
  const work = path.join(cache, `${TMP_PREFIX}${process.pid}-${randomBytes(4).toString('hex')}`);
  const target = path.join(work, 'target');
  // pip unpacks into TMPDIR before moving into --target: keep that on the
  // cache's filesystem (a tmpfs /tmp may not hold 4.7 GB) and inside `work`.
  const pipTmp = path.join(work, 'pip-tmp');
  mkdirSync(pipTmp, { recursive: true });
  const { args } = PIP_INSTALLS[plan.flavor];
  try {
    io.err(`running ${python.executable} -m pip install --target ${tildify(target)} ${args.join(' ')}`);
    const pipArgs = ['install', '--no-input', '--disable-pip-version-check', '--only-binary=:all:', '--no-compile', '--no-warn-script-location', '--target', target, ...args];
    const { code, interrupted } = await runPip(python.executable, pipArgs, { ...process.env, TMPDIR: pipTmp, PIP_ROOT_USER_ACTION: 'ignore' }, path.join(work, PIP_PID_FILE));
    if (interrupted) return { signal: interrupted };
    if (code !== 0) throw new SetupError(`pip failed (exit code ${code}); its output is above. Nothing was installed; rerun \`st-native setup\` when the cause is fixed.`);
    if (plan.flavor === 'cpu') for (const lib of CUDA_ONLY_LIBRARIES) rmSync(path.join(target, 'torch', 'lib', lib), { force: true });
    const torchVersion = readLibtorchVersion(path.join(target, 'torch'));
    if (!torchVersion) throw new SetupError(`pip installed no torch/version.py into ${target}`);
    const missing = requiredFiles(plan.flavor).filter((f) => !existsSync(path.join(target, f)));
    if (missing.length) throw new SetupError(`the install lacks ${missing.join(', ')}`);
    const libDir = path.join(target, 'torch', 'lib');
    const libs = ['libc10.so', 'libtorch_cpu.so', ...(plan.flavor === 'cuda' ? ['libc10_cuda.so', 'libtorch_cuda.so'] : [])];
    io.err(`checking that ${libs.join(', ')} load ...`);
    const loadError = verifyLoads(python.executable, libs.map((l) => path.join(libDir, l)));
    if (loadError) throw new SetupError(`the installed libtorch does not load: ${loadError}`);
    // Written last: its presence is what makes the install complete.
    writeMarker(target, { version: LIBTORCH_VERSION, flavor: plan.flavor, torchVersion, packages: args.filter((a) => !a.startsWith('-')), installedAt: new Date().toISOString() });
    rmSync(pipTmp, { recursive: true, force: true });
    const old = path.join(work, 'old');
    const movedOld = plan.replace && existsSync(plan.dir);
    if (movedOld) renameSync(plan.dir, old);
    try {
      renameSync(target, plan.dir);
    } catch (e) {
      // Another setup finished the same install meanwhile: keep theirs.
      const code = (e as NodeJS.ErrnoException).code;
      if ((code === 'ENOTEMPTY' || code === 'EEXIST') && installStatus(plan.dir, plan.flavor).complete) return { torchVersion };
      if (movedOld && !existsSync(plan.dir)) renameSync(old, plan.dir);
      throw e;
    }
    return { torchVersion };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

export async function runSetup(
  options: { flavor?: Flavor; force: boolean; root?: string; cache?: string },
  io: Io,
): Promise<SetupResult | { signal: NodeJS.Signals }> {
  const started = Date.now();
  const cache = options.cache ?? cacheDir();
  const choice = chooseFlavor(options.flavor, options.root);
  const removed = removeStaleTempDirs(cache);
  if (removed.length) io.err(`removed ${removed.length} unfinished install folder(s) left by an interrupted setup`);
  const plan = planSetup(choice, options.flavor !== undefined, options.force, cache);
  io.err(`flavour ${choice.flavor}: ${choice.why}`);
  let torchVersion: string;
  if (plan.action === 'skip') {
    io.err(`${plan.why} in ${tildify(plan.dir)} (--force reinstalls)`);
    torchVersion = readMarker(plan.dir)?.torchVersion ?? LIBTORCH_VERSION;
  } else {
    io.err(`installing libtorch ${LIBTORCH_VERSION} (${plan.flavor}: ${PIP_INSTALLS[plan.flavor].download}) into ${tildify(plan.dir)}`);
    const done = await install(plan, cache, io);
    if ('signal' in done) return done;
    torchVersion = done.torchVersion;
  }
  // The cache entry itself must qualify; then say which libtorch a run will load.
  const own = inspectLibtorchDir(path.join(plan.dir, 'torch'), 'cache');
  if (!own.found) throw new SetupError(`${plan.dir} does not qualify after installing: ${own.candidate.reason}`);
  const found = findLibtorch({ cache });
  return {
    ok: true,
    flavor: plan.flavor,
    why: plan.action === 'skip' ? plan.why : choice.why,
    dir: plan.dir,
    torchVersion,
    alreadyInstalled: plan.action === 'skip',
    bytes: folderBytes(plan.dir),
    seconds: (Date.now() - started) / 1000,
    willUse: found.ok ? { source: found.source, libDir: found.libDir } : null,
  };
}

export async function setupCommand(values: { cpu?: boolean; cuda?: boolean; force?: boolean; json?: boolean }, io: Io): Promise<number> {
  if (values.cpu && values.cuda) throw new UsageError('--cpu and --cuda exclude each other');
  const result = await runSetup({ flavor: values.cpu ? 'cpu' : values.cuda ? 'cuda' : undefined, force: Boolean(values.force) }, io);
  if ('signal' in result) {
    io.err('setup interrupted: nothing was installed (rerun `st-native setup` to start again)');
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
