// The whole test suite: Rust numerics (cargo test, release profile so it
// reuses the addon build's compiled dependencies), then the TypeScript/ava
// tests against the built addon. Run through `npm test`, which builds first.
import { execFileSync } from 'node:child_process';
import { resolveLibtorch, root } from './libtorch.mjs';

const run = (cmd, args, env = {}) =>
  execFileSync(cmd, args, { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } });

const libtorch = resolveLibtorch({ provision: false });
run('cargo', ['fmt', '--all', '--check']);
run('cargo', ['test', '--release', '-p', 'st-core'], libtorch.env);
run('npx', ['ava'], { ST_NATIVE_TEST: '1' });
