/**
 * Finding and pre-loading libtorch at run time, the cache folder, and the
 * decisions of `st-native setup` / `doctor`, on fake folders: nothing here
 * downloads or loads a real libtorch.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { diagnose, type NativeStatus } from '../ts/cli/doctor.js';
import { chooseFlavor, planSetup, removeStaleTempDirs, requiredFiles } from '../ts/cli/setup.js';
import {
  cacheDir,
  findLibtorch,
  libtorchInstallDir,
  LibtorchError,
  preloadLibtorch,
  writeMarker,
  type Flavor,
  type LibtorchFound,
} from '../ts/runtime/index.js';
import { root } from './helpers/cli.js';

function tempDir(t: { teardown: (fn: () => void) => void }): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'st-native-runtime-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function touch(file: string, content = ''): void {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, content);
}

/** A libtorch folder laid out like libtorch's zip: lib/ and build-version. */
function fakeLibtorch(dir: string, version: string, { cuda = false } = {}): string {
  for (const lib of ['libc10.so', 'libtorch_cpu.so', 'libtorch.so', ...(cuda ? ['libc10_cuda.so', 'libtorch_cuda.so'] : [])]) touch(path.join(dir, 'lib', lib));
  touch(path.join(dir, 'build-version'), `${version}\n`);
  return dir;
}

/** A torch package folder laid out like PyTorch's wheel: lib/ and version.py. */
function fakeTorchPackage(dir: string, version: string): string {
  for (const lib of ['libc10.so', 'libtorch_cpu.so', 'libtorch.so']) touch(path.join(dir, 'lib', lib));
  touch(path.join(dir, 'version.py'), `from typing import Optional\n__version__ = '${version}'\ncuda: Optional[str] = '13.0'\n`);
  return dir;
}

/** A complete-looking `setup` install of `flavor` in `cache`. */
function fakeInstall(cache: string, flavor: Flavor): string {
  const dir = libtorchInstallDir(flavor, cache);
  for (const f of requiredFiles(flavor)) touch(path.join(dir, f));
  touch(path.join(dir, 'torch', 'version.py'), "__version__ = '2.11.0+cu130'\n");
  writeMarker(dir, { version: '2.11.0', flavor, torchVersion: '2.11.0+cu130', packages: ['torch==2.11.0'], installedAt: new Date().toISOString() });
  return dir;
}

/** Search options that see nothing on this machine but what a test puts there. */
function isolated(dir: string, env: NodeJS.ProcessEnv = {}) {
  return {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ST_NATIVE_PYTHON: path.join(dir, 'no-python'), ...env },
    packageRoot: path.join(dir, 'pkg'),
    cache: path.join(dir, 'cache'),
  };
}

test('ST_NATIVE_LIBTORCH at a libtorch of the wrong version is rejected, naming both versions', (t) => {
  const dir = tempDir(t);
  const old = fakeLibtorch(path.join(dir, 'libtorch-old'), '2.10.0+cpu');
  const r = findLibtorch(isolated(dir, { ST_NATIVE_LIBTORCH: old }));
  t.false(r.ok);
  const c = r.tried.find((x) => x.source === 'ST_NATIVE_LIBTORCH')!;
  t.is(c.path, old);
  t.is(c.version, '2.10.0+cpu');
  t.regex(c.reason!, /libtorch 2\.10\.0\+cpu; st-native needs 2\.11\.0/);
  if (!r.ok) t.regex(r.error.message, new RegExp(`ST_NATIVE_LIBTORCH=${old}: libtorch 2\\.10\\.0\\+cpu; st-native needs 2\\.11\\.0`));
});

test('a missing ST_NATIVE_LIBTORCH folder is listed in the error', (t) => {
  const dir = tempDir(t);
  const missing = path.join(dir, 'nowhere');
  const r = findLibtorch(isolated(dir, { ST_NATIVE_LIBTORCH: missing }));
  t.false(r.ok);
  if (!r.ok) t.true(r.error.message.includes(`ST_NATIVE_LIBTORCH=${missing}: does not exist`));
});

test('the not-found error names every place looked at, in order, and ends with the setup command', (t) => {
  const dir = tempDir(t);
  mkdirSync(path.join(dir, 'empty'));
  const r = findLibtorch(isolated(dir, { LIBTORCH: path.join(dir, 'empty') }));
  t.false(r.ok);
  if (r.ok) return;
  t.true(r.error instanceof LibtorchError);
  t.is(r.error.code, 'ERR_LIBTORCH');
  const lines = r.error.message.split('\n');
  t.is(lines[0], 'libtorch 2.11.0 not found. Looked at:');
  const places = lines.filter((l) => l.startsWith('  - '));
  t.deepEqual(
    places.map((l) => l.replace(/:.*/, '')),
    [
      '  - ST_NATIVE_LIBTORCH',
      `  - LIBTORCH=${path.join(dir, 'empty')}`,
      `  - ST_NATIVE_PYTHON=${path.join(dir, 'no-python')}`,
      `  - project .venv ${path.join(dir, 'pkg', '.venv')}`,
      `  - cache ${path.join(dir, 'cache', 'libtorch-2.11.0-cuda')}`,
      `  - cache ${path.join(dir, 'cache', 'libtorch-2.11.0-cpu')}`,
    ],
  );
  t.regex(r.error.message, /ST_NATIVE_LIBTORCH: not set/);
  t.regex(r.error.message, /ST_NATIVE_PYTHON=\S+: not found/);
  t.regex(r.error.message, /libtorch-2\.11\.0-cpu: not installed/);
  t.true(r.error.message.endsWith('\n  npx st-native setup'));
  t.is(r.tried.length, 6);
});

test('a libtorch 2.11.0 is found from its folder or its lib/, with build-version or version.py', (t) => {
  const dir = tempDir(t);
  const zip = fakeLibtorch(path.join(dir, 'libtorch'), '2.11.0+cpu');
  for (const given of [zip, path.join(zip, 'lib')]) {
    const r = findLibtorch(isolated(dir, { ST_NATIVE_LIBTORCH: given }));
    t.true(r.ok, given);
    if (!r.ok) continue;
    t.is(r.libDir, path.join(zip, 'lib'));
    t.is(r.version, '2.11.0+cpu');
    t.is(r.source, 'ST_NATIVE_LIBTORCH');
    t.false(r.cudaLibs);
    t.is(r.tried.length, 1);
  }
  const wheel = fakeTorchPackage(path.join(dir, 'site', 'torch'), '2.11.0+cu130');
  touch(path.join(wheel, 'lib', 'libtorch_cuda.so'));
  const r = findLibtorch(isolated(dir, { LIBTORCH: wheel }));
  t.true(r.ok);
  if (r.ok) {
    t.is(r.source, 'LIBTORCH');
    t.is(r.version, '2.11.0+cu130');
    t.true(r.cudaLibs);
    t.is(r.tried[0]!.reason, 'not set');
  }
});

test('a folder without libtorch_cpu.so, or without a version, is rejected saying so', (t) => {
  const dir = tempDir(t);
  const noVersion = path.join(dir, 'noversion');
  touch(path.join(noVersion, 'lib', 'libc10.so'));
  touch(path.join(noVersion, 'lib', 'libtorch_cpu.so'));
  const r1 = findLibtorch(isolated(dir, { ST_NATIVE_LIBTORCH: noVersion }));
  t.regex(r1.tried[0]!.reason!, /cannot tell its version/);
  const r2 = findLibtorch(isolated(dir, { ST_NATIVE_LIBTORCH: dir }));
  t.regex(r2.tried[0]!.reason!, /no libtorch_cpu\.so/);
});

test("a Python's torch is found without importing it", (t) => {
  const dir = tempDir(t);
  const site = path.join(dir, 'site');
  const torch = fakeTorchPackage(path.join(site, 'torch'), '2.11.0+cu130');
  // Importing this torch fails: the probe must not import it.
  touch(path.join(torch, '__init__.py'), "raise ImportError('libcudnn.so.9: cannot open shared object file')\n");
  const r = findLibtorch({ ...isolated(dir), env: { PATH: process.env.PATH, HOME: process.env.HOME, PYTHONPATH: site, ST_NATIVE_PYTHON: 'python3' } });
  t.true(r.ok, JSON.stringify(r.tried));
  if (r.ok) {
    t.is(r.libDir, path.join(torch, 'lib'));
    t.regex(r.source, /^ST_NATIVE_PYTHON=python3 \(\/.+\)$/);
  }
});

test("the project's .venv and then the cache are searched; a cache install counts only with its marker", (t) => {
  const dir = tempDir(t);
  const opts = isolated(dir);
  const cpuDir = libtorchInstallDir('cpu', opts.cache);
  fakeTorchPackage(path.join(cpuDir, 'torch'), '2.11.0+cu130');
  const unfinished = findLibtorch(opts);
  t.false(unfinished.ok);
  t.regex(unfinished.tried.at(-1)!.reason!, /incomplete install \(no marker\)/);

  writeMarker(cpuDir, { version: '2.11.0', flavor: 'cpu', torchVersion: '2.11.0+cu130', packages: [], installedAt: '' });
  const cached = findLibtorch(opts);
  t.true(cached.ok);
  if (cached.ok) {
    t.is(cached.libDir, path.join(cpuDir, 'torch', 'lib'));
    t.regex(cached.source, /^cache \(.*libtorch-2\.11\.0-cpu\)$/);
  }

  fakeTorchPackage(path.join(opts.packageRoot, '.venv', 'lib', 'python3.12', 'site-packages', 'torch'), '2.11.0+cu130');
  const venv = findLibtorch(opts);
  t.true(venv.ok);
  if (venv.ok) t.is(venv.source, 'project .venv');
});

test.serial('the cache folder: ST_NATIVE_CACHE_DIR, else $XDG_CACHE_HOME/st-native, else ~/.cache/st-native', (t) => {
  const saved = process.env.XDG_CACHE_HOME;
  t.teardown(() => {
    if (saved === undefined) delete process.env.XDG_CACHE_HOME;
    else process.env.XDG_CACHE_HOME = saved;
  });
  t.is(cacheDir({ ST_NATIVE_CACHE_DIR: '/srv/cache' }), '/srv/cache');
  t.is(cacheDir({ ST_NATIVE_CACHE_DIR: 'rel/cache' }), path.resolve('rel/cache'));
  process.env.XDG_CACHE_HOME = '/xdg/cache';
  t.is(cacheDir({}), '/xdg/cache/st-native');
  delete process.env.XDG_CACHE_HOME;
  t.is(cacheDir({}), path.join(os.homedir(), '.cache', 'st-native'));
  t.is(libtorchInstallDir('cpu', '/c'), '/c/libtorch-2.11.0-cpu');
  t.is(libtorchInstallDir('cuda', '/c'), '/c/libtorch-2.11.0-cuda');
});

test('setup picks --cuda exactly where an NVIDIA driver is visible; a flag wins', (t) => {
  const none = tempDir(t);
  t.is(chooseFlavor(undefined, none).flavor, 'cpu');
  t.regex(chooseFlavor(undefined, none).why, /no NVIDIA driver/);
  const proc = tempDir(t);
  mkdirSync(path.join(proc, 'proc', 'driver', 'nvidia'), { recursive: true });
  t.is(chooseFlavor(undefined, proc).flavor, 'cuda');
  const dev = tempDir(t);
  touch(path.join(dev, 'dev', 'nvidiactl'));
  t.is(chooseFlavor(undefined, dev).flavor, 'cuda');
  t.deepEqual(chooseFlavor('cpu', dev), { flavor: 'cpu', why: '--cpu given' });
  t.is(chooseFlavor('cuda', none).flavor, 'cuda');
});

test('setup keeps a complete install, redoes an unfinished one, reinstalls with --force', (t) => {
  const cache = tempDir(t);
  const cpu = { flavor: 'cpu' as const, why: '' };
  t.like(planSetup(cpu, true, false, cache), { action: 'install', replace: false, why: 'not installed' });

  const dir = fakeInstall(cache, 'cpu');
  t.like(planSetup(cpu, true, false, cache), { action: 'skip', flavor: 'cpu', dir });
  t.like(planSetup(cpu, true, true, cache), { action: 'install', replace: true, why: '--force given' });

  rmSync(path.join(dir, 'torch', 'lib', 'libtorch_cpu.so'));
  t.like(planSetup(cpu, true, false, cache), { action: 'install', replace: true, why: 'torch/lib/libtorch_cpu.so missing' });
  rmSync(path.join(dir, 'st-native-libtorch.json'));
  const redo = planSetup(cpu, true, false, cache);
  t.is(redo.action, 'install');
  t.regex(redo.why, /no completion marker/);
});

test('setup without a flag on a CPU host reuses a complete CUDA install; --cpu does not', (t) => {
  const cache = tempDir(t);
  fakeInstall(cache, 'cuda');
  t.like(planSetup({ flavor: 'cpu', why: '' }, false, false, cache), { action: 'skip', flavor: 'cuda' });
  t.like(planSetup({ flavor: 'cpu', why: '' }, true, false, cache), { action: 'install', flavor: 'cpu' });
});

test('setup removes the temp folders of dead processes only, and not while their pip still runs', (t) => {
  const cache = tempDir(t);
  for (const name of ['.tmp-111-aa', `.tmp-${process.pid}-bb`, '.tmp-222-cc', '.tmp-333-dd', 'libtorch-2.11.0-cpu']) mkdirSync(path.join(cache, name, 'target'), { recursive: true });
  // Setup 333 was killed with SIGKILL; its pip (444) goes on writing.
  writeFileSync(path.join(cache, '.tmp-333-dd', 'pip.pid'), '444');
  t.deepEqual(removeStaleTempDirs(cache, (pid) => pid === 222 || pid === 444), ['.tmp-111-aa']);
  t.deepEqual(removeStaleTempDirs(cache, () => false).sort(), ['.tmp-222-cc', '.tmp-333-dd']);
  t.deepEqual(readdirSync(cache).sort(), [`.tmp-${process.pid}-bb`, 'libtorch-2.11.0-cpu']);
});

function found(libDir: string, cudaLibs: boolean): LibtorchFound {
  return { ok: true, libDir, version: '2.11.0+cu130', source: 'test', cudaLibs, tried: [] };
}

test('preload opens the CPU libraries in order, then CUDA only where its libraries and a driver are there', (t) => {
  const dir = tempDir(t);
  const lib = path.join(dir, 'lib');
  touch(path.join(lib, 'libtorch.so'));
  const driverRoot = tempDir(t);
  touch(path.join(driverRoot, 'dev', 'nvidiactl'));
  const noDriver = tempDir(t);

  const opened: string[] = [];
  const cpuOnly = preloadLibtorch(found(lib, false), (p) => void opened.push(path.basename(p)), { root: driverRoot });
  t.deepEqual(opened, ['libc10.so', 'libtorch_cpu.so', 'libtorch.so']);
  t.false(cpuOnly.cuda);
  t.regex(cpuOnly.cudaError!, /no libtorch_cuda\.so .*st-native setup --cuda/);

  opened.length = 0;
  const noGpu = preloadLibtorch(found(lib, true), (p) => void opened.push(path.basename(p)), { root: noDriver });
  t.deepEqual(opened, ['libc10.so', 'libtorch_cpu.so'], 'no libtorch.so: it would pull libtorch_cuda in');
  t.regex(noGpu.cudaError!, /no NVIDIA driver/);

  opened.length = 0;
  const gpu = preloadLibtorch(found(lib, true), (p) => void opened.push(path.basename(p)), { root: driverRoot });
  t.deepEqual(opened, ['libc10.so', 'libtorch_cpu.so', 'libc10_cuda.so', 'libtorch_cuda.so', 'libtorch.so']);
  t.deepEqual(gpu, { cuda: true, loaded: opened.map((n) => path.join(lib, n)) });

  opened.length = 0;
  const off = preloadLibtorch(found(lib, true), (p) => void opened.push(path.basename(p)), { root: driverRoot, cuda: 'off' });
  t.false(off.cuda);
  t.deepEqual(opened, ['libc10.so', 'libtorch_cpu.so']);
});

test('preload: a CUDA library that fails only turns CUDA off; a CPU library that fails is a LibtorchError', (t) => {
  const lib = path.join(tempDir(t), 'lib');
  const driverRoot = tempDir(t);
  mkdirSync(path.join(driverRoot, 'proc', 'driver', 'nvidia'), { recursive: true });
  const failOn = (name: string, text: string) => (p: string) => {
    if (path.basename(p) === name) throw new Error(text);
  };
  const r = preloadLibtorch(found(lib, true), failOn('libtorch_cuda.so', 'libcublas.so.13: cannot open shared object file: No such file or directory'), { root: driverRoot });
  t.false(r.cuda);
  t.is(r.cudaError, 'libtorch_cuda.so could not be loaded: libcublas.so.13: cannot open shared object file: No such file or directory');

  const e = t.throws(() => preloadLibtorch(found(lib, false), failOn('libtorch_cpu.so', 'libcudart.so.13: cannot open shared object file: No such file or directory')), {
    instanceOf: LibtorchError,
  });
  t.is(e.code, 'ERR_LIBTORCH');
  t.true(e.message.startsWith(`libtorch 2.11.0+cu130 found at ${lib} (from test), but libtorch_cpu.so could not be loaded: libcudart.so.13`));
  t.regex(e.message, /nvidia-cuda-runtime and nvidia-cuda-cupti/);
  t.true(e.message.endsWith('\n  npx st-native setup'));
});

function failedStatus(message: string): NativeStatus {
  return { loaded: false, addonPath: null, addonPackage: null, libtorch: null, cuda: false, cudaError: null, error: { code: 'ERR_LIBTORCH', message }, runtime: null };
}

test('doctor without libtorch: training cannot run, the search is listed, the fix is setup', (t) => {
  const dir = tempDir(t);
  const r = diagnose(failedStatus('libtorch 2.11.0 not found'), null, { ...isolated(dir), root: dir });
  t.false(r.ok);
  t.false(r.libtorch.found);
  t.is(r.libtorch.tried.length, 6);
  t.deepEqual(
    r.problems.map((p) => [p.severity, p.fix]),
    [['error', 'npx st-native setup']],
  );
  t.is(r.folders.cache, path.join(dir, 'cache'));
  t.deepEqual(
    r.folders.libtorchInstalls.map((i) => [i.flavor, i.complete]),
    [
      ['cuda', false],
      ['cpu', false],
    ],
  );
  t.true(r.datasets.find((d) => d.name === 'mnist-embedded')!.present);
});

test('doctor with a driver but a CPU-only libtorch says to install the CUDA one', (t) => {
  const dir = tempDir(t);
  touch(path.join(dir, 'dev', 'nvidiactl'));
  const lt = found(path.join(dir, 'lib'), false);
  const status: NativeStatus = {
    loaded: true,
    addonPath: '/x/st-native.node',
    addonPackage: 'st-native-linux-x64-gnu',
    libtorch: lt,
    cuda: false,
    cudaError: 'no libtorch_cuda.so',
    error: null,
    runtime: { libtorchVersion: '2.11.0', cudaAvailable: false, cudaDevices: 0, cores: 2, allocator: 'st-native' },
  };
  const r = diagnose(status, [{ name: 'NVIDIA H100 80GB HBM3', memoryMiB: 81559 }], { ...isolated(dir), root: dir });
  t.true(r.ok);
  t.deepEqual(r.problems, [{ severity: 'warning', problem: 'an NVIDIA driver is present but CUDA is off: no libtorch_cuda.so', fix: 'npx st-native setup --cuda' }]);
  t.is(r.cpu.libtorchCores, 2);
});

function cliWith(env: NodeJS.ProcessEnv, ...args: string[]) {
  return spawnSync(process.execPath, [path.join(root, 'bin', 'st-native.js'), ...args], { encoding: 'utf8', env: { ...process.env, CI: 'true', ...env } });
}

test('CLI: setup --help, doctor --help, and --cpu with --cuda is a usage error', (t) => {
  t.regex(cliWith({}, 'setup', '--help').stdout, /Usage: st-native setup \[options\][\s\S]*--cpu[\s\S]*--cuda/);
  t.regex(cliWith({}, 'doctor', '--help').stdout, /Usage: st-native doctor \[options\][\s\S]*--json/);
  const r = cliWith({}, 'setup', '--cpu', '--cuda');
  t.is(r.status, 2);
  t.regex(r.stderr, /option '--cpu' cannot be used with option '--cuda'/);
});

test('CLI: setup on a complete install is a no-op; --pip without Python fails saying what to install', (t) => {
  const cache = tempDir(t);
  fakeInstall(cache, 'cpu');
  const again = cliWith({ ST_NATIVE_CACHE_DIR: cache }, 'setup', '--cpu', '--json');
  t.is(again.status, 0, again.stderr);
  const result = JSON.parse(again.stdout) as { alreadyInstalled: boolean; flavor: string; dir: string };
  t.true(result.alreadyInstalled);
  t.is(result.dir, path.join(cache, 'libtorch-2.11.0-cpu'));

  const empty = tempDir(t);
  const noPython = cliWith({ ST_NATIVE_CACHE_DIR: empty, ST_NATIVE_PYTHON: path.join(empty, 'no-python') }, 'setup', '--cpu', '--pip');
  t.is(noPython.status, 1);
  t.regex(noPython.stderr, /\[ERR_SETUP\].*no-python not found.*Python 3\.10-3\.14 with pip/);
});

test('CLI: doctor --json prints one report and its exit code says whether training can run', (t) => {
  const r = cliWith({}, 'doctor', '--json');
  const report = JSON.parse(r.stdout) as { ok: boolean; libtorch: { tried: unknown[] } };
  t.is(r.status, report.ok ? 0 : 1);
  t.true(report.libtorch.tried.length > 0);
});
