/**
 * Installing from npm as a user would: the main and the platform package are
 * packed (`scripts/pack.mjs`), installed into a new project with lifecycle
 * scripts disabled and with no cargo or C compiler on PATH, then `doctor`
 * and a one-epoch training run there; without libtorch, both fail with the
 * one clear message. Also: publint and arethetypeswrong on the packed main
 * package, and the ELF facts of the prebuilt addon (no rpath, nothing a
 * CPU-only libtorch cannot satisfy).
 * Serial: npm install and training in one go on a two-core machine.
 */
import test from 'ava';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { findLibtorch } from '../ts/runtime/libtorch.js';
import { root } from './helpers/cli.js';

const work = mkdtempSync(path.join(tmpdir(), 'st-pack-'));
const project = path.join(work, 'consumer');
const bin = path.join(work, 'bin');

function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, { cwd: opts.cwd ?? root, encoding: 'utf8', env: opts.env ?? process.env, timeout: 300_000 });
}

/** A PATH with node, npm, npx and sh only: no cargo, no cc, no python. */
function bareEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { HOME: process.env.HOME, PATH: bin, CI: 'true', ST_NATIVE_CACHE_DIR: path.join(work, 'cache'), ST_NATIVE_PYTHON: path.join(work, 'no-python'), ...extra };
}

let tarballs: { main: string; platform: string; sizes: { main: number; platform: number } };

test.serial.before('pack both packages and install them with scripts disabled and no compiler', (t) => {
  const packed = run(process.execPath, [path.join(root, 'scripts', 'pack.mjs'), path.join(work, 'tarballs')]);
  if (packed.status !== 0) throw new Error(`pack failed: ${packed.stderr}`);
  tarballs = JSON.parse(packed.stdout.trim().split('\n').at(-1)!) as typeof tarballs;
  t.log(`packed sizes: main ${tarballs.sizes.main} B, platform ${tarballs.sizes.platform} B`);
  mkdirSync(bin);
  for (const tool of ['node', 'npm', 'npx', 'sh']) {
    const which = run('sh', ['-c', `command -v ${tool}`]).stdout.trim();
    if (which) symlinkSync(which, path.join(bin, tool));
  }
  mkdirSync(project);
  writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, type: 'module' }));
  const installed = run('npm', ['install', '--ignore-scripts', '--no-audit', '--no-fund', tarballs.main, tarballs.platform], { cwd: project, env: bareEnv() });
  if (installed.status !== 0) throw new Error(`npm install failed: ${installed.stderr}`);
  if (/EBADENGINE/.test(installed.stderr)) throw new Error(`engine warnings on install: ${installed.stderr}`);
});

const cliIn = (args: string[], env: NodeJS.ProcessEnv) => run(path.join(project, 'node_modules', '.bin', 'st-native'), args, { cwd: project, env });

test.serial('the packages hold no libtorch and no Rust sources, and stay small', (t) => {
  t.true(tarballs.sizes.platform < 20 * 1024 * 1024, `platform package ${tarballs.sizes.platform} B`);
  t.true(tarballs.sizes.main < 2 * 1024 * 1024, `main package ${tarballs.sizes.main} B`);
  const files = (tgz: string) => run('tar', ['tzf', tgz]).stdout.split('\n');
  for (const f of [...files(tarballs.main), ...files(tarballs.platform)]) {
    t.notRegex(f, /\.so(\.\d+)*$|\.rs$|Cargo\.(toml|lock)$/, f);
  }
  t.deepEqual(readdirSync(path.join(project, 'node_modules', 'st-native-linux-x64-gnu')).filter((f) => f.endsWith('.node')).sort(), [
    'st-native-preload.linux-x64-gnu.node',
    'st-native.linux-x64-gnu.node',
  ]);
});

test.serial('doctor and a one-epoch training run work in the new project (libtorch from ST_NATIVE_LIBTORCH)', (t) => {
  const found = findLibtorch();
  if (!found.ok) return t.fail(found.error.message);
  const env = bareEnv({ ST_NATIVE_LIBTORCH: found.libDir });
  const doctor = cliIn(['doctor', '--json'], env);
  t.is(doctor.status, 0, doctor.stderr + doctor.stdout);
  const report = JSON.parse(doctor.stdout) as Record<string, unknown>;
  t.regex(JSON.stringify(report), /st-native-linux-x64-gnu/);
  t.regex(JSON.stringify(report), /ST_NATIVE_LIBTORCH/);
  const runs = path.join(work, 'runs');
  const trained = cliIn(['train', '--json', '--device', 'cpu', '--epochs', '1', '--runs-dir', runs, '--name', 'packed',
    '--set', 'dataset.trainSize=128', '--set', 'dataset.testSize=32', '--set', 'eval.steps=1'], env);
  t.is(trained.status, 0, trained.stderr);
  t.true(existsSync(path.join(runs, 'packed', 'checkpoints', 'last.safetensors')));
});

test.serial('without libtorch, doctor and train fail with one message that says where it looked and what to run', (t) => {
  const env = bareEnv();
  const doctor = cliIn(['doctor'], env);
  t.is(doctor.status, 1, doctor.stdout);
  t.regex(doctor.stdout + doctor.stderr, /npx st-native setup/);
  const train = cliIn(['train', '--epochs', '1'], env);
  t.is(train.status, 1);
  t.regex(train.stderr, /\[ERR_LIBTORCH\]: libtorch 2\.11\.0 not found\. Looked at:/);
  t.regex(train.stderr, /ST_NATIVE_LIBTORCH: not set/);
  t.regex(train.stderr, /npx st-native setup/);
  t.notRegex(train.stderr, /dlopen|cannot open shared object|at Module\./);
});

test.serial('publint and arethetypeswrong pass on the packed main package', (t) => {
  const publint = run(process.execPath, [path.join(root, 'node_modules', 'publint', 'src', 'cli.js'), '--strict', tarballs.main]);
  t.is(publint.status, 0, publint.stdout + publint.stderr);
  // ESM only, by design: Node >= 20.19 (our floor) can require() it.
  const attw = run(path.join(root, 'node_modules', '.bin', 'attw'), ['--profile', 'esm-only', tarballs.main]);
  t.is(attw.status, 0, attw.stdout + attw.stderr);
});

test.serial('the prebuilt addon has no rpath and needs nothing a CPU-only libtorch lacks', (t) => {
  const allowed = new Set(['libstdc++.so.6', 'libgcc_s.so.1', 'libc.so.6', 'libm.so.6', 'ld-linux-x86-64.so.2', 'ld-linux-aarch64.so.1', 'libtorch_cpu.so', 'libc10.so']);
  for (const file of readdirSync(path.join(project, 'node_modules', 'st-native-linux-x64-gnu')).filter((f) => f.endsWith('.node'))) {
    const dynamic = run('readelf', ['-d', path.join(project, 'node_modules', 'st-native-linux-x64-gnu', file)]).stdout;
    t.notRegex(dynamic, /\((RPATH|RUNPATH)\)/, file);
    const needed = [...dynamic.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]!);
    t.deepEqual(needed.filter((n) => !allowed.has(n)), [], `${file} needs ${needed.join(', ')}`);
  }
});
