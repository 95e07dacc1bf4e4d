// Builds everything `npm install` needs: libtorch (found or provisioned),
// the Rust addon (release, through @napi-rs/cli), then the TypeScript.
// Incremental: cargo and tsc skip what is up to date.
import { execFileSync } from 'node:child_process';
import { envWith, resolveLibtorch, root } from './libtorch.mjs';

const run = (cmd, args, env = {}) =>
  execFileSync(cmd, args, { cwd: root, stdio: 'inherit', env: envWith(env) });

const started = Date.now();
const libtorch = resolveLibtorch();
console.error(`build: libtorch from ${libtorch.source}`);
run(
  'npx',
  [
    'napi', 'build',
    '--manifest-path', 'native/node/Cargo.toml',
    '--output-dir', 'native/node',
    '--release',
    '--no-js',
    '--dts', 'index.d.ts',
  ],
  libtorch.env,
);
run('npx', ['tsc', '-p', 'tsconfig.json']);
console.error(`build: done in ${((Date.now() - started) / 1000).toFixed(0)} s`);
