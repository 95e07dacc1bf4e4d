// Builds everything a clone needs: libtorch for the build (found or
// provisioned), the Rust addon with its napi-rs generated loader and type
// declarations, the preload shim, then the TypeScript.
// Incremental: cargo and tsc skip what is up to date.
//
// Runs from `npm install` in the clone (the `prepare` script) and from
// `npm test` / `npm run build`. It never runs when st-native is installed as
// a dependency (from the registry, a tarball or a folder): users get the
// prebuilt addon, and a consumer must never rebuild (and overwrite, under
// running processes) the producer's addon.
import { execFileSync } from 'node:child_process';
import { copyFileSync, renameSync } from 'node:fs';
import path from 'node:path';
import { cargoTarget, releaseDir } from './cargo-target.mjs';
import { envWith, resolveLibtorch, root } from './libtorch.mjs';
import { addonFile, preloadFile } from './platform.mjs';

const invokedFrom = process.env.INIT_CWD ? path.resolve(process.env.INIT_CWD) : root;
if (process.env.npm_lifecycle_event === 'prepare') {
  if (invokedFrom !== root) {
    console.error(`st-native: not building inside ${root} for a project at ${invokedFrom} (it ships prebuilt; build a clone with npm install in its own folder)`);
    process.exit(0);
  }
  // `npx st-native` in a clone links the clone into npx's cache and runs
  // its prepare: the clone's own build (from npm install) is what runs.
  if (process.env.npm_command === 'exec') process.exit(0);
}

const run = (cmd, args, env = {}) =>
  execFileSync(cmd, args, { cwd: root, stdio: 'inherit', env: envWith(env) });

const started = Date.now();
const libtorch = resolveLibtorch();
console.error(`build: libtorch from ${libtorch.source}`);
const nodeDir = path.join(root, 'native', 'node');
run(
  'npx',
  [
    'napi', 'build',
    '--manifest-path', 'native/node/Cargo.toml',
    '--output-dir', 'native/node',
    '--platform',
    '--release',
    ...cargoTarget,
    '--js', 'binding.cjs',
    '--dts', 'binding.d.cts',
  ],
  libtorch.env,
);
// The shim links no libtorch: a plain cargo build, named as napi would name it.
run('cargo', ['build', '--release', '-q', ...cargoTarget, '-p', 'st-native-preload']);
const shim = path.join(nodeDir, preloadFile);
copyFileSync(path.join(releaseDir, 'libst_native_preload.so'), `${shim}.tmp`);
renameSync(`${shim}.tmp`, shim);
console.error(`build: ${path.join('native/node', addonFile)} and ${path.join('native/node', preloadFile)}`);
run('npx', ['tsc', '-p', 'tsconfig.json']);
console.error(`build: done in ${((Date.now() - started) / 1000).toFixed(0)} s`);
