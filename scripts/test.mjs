// The whole test suite: Rust numerics (cargo test, release profile so it
// reuses the addon build's compiled dependencies), then the TypeScript/ava
// tests against the built addon. Run through `npm test`, which builds first.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { cargoTarget } from './cargo-target.mjs';
import { envWith, resolveLibtorch, root } from './libtorch.mjs';
import { ensureTestPackages } from './python-test-deps.mjs';
// Built by `npm test`'s build step before this script runs.
import { OPENMP_SPIN_ROUNDS } from '../dist/ts/native-loader.js';

// How libtorch's OpenMP threads wait, per stage, unless the environment
// chose (OMP_WAIT_POLICY or GOMP_SPINCOUNT set: kept everywhere; child
// processes inherit it).
// - ava: passively. Its test files run side by side, each with libtorch
//   processes of two threads on two cores, and spinning threads take each
//   other's time: two concurrent ST-step benches measured 14 images/s each
//   with libgomp's default spin, 23 with st-native's bounded spin and 35
//   passive, and an ava run with the bounded spin had finished 167 of 303
//   tests after 1,320 s where the passive one finished all in 842 s.
// - Rust tests: st-native's own bounded spin (GOMP_SPINCOUNT=OPENMP_SPIN_ROUNDS,
//   what the addon sets when it loads). They run
//   one test binary at a time, on tiny models whose operations are short, so
//   a passive thread's sleep and wake-up per parallel region dominates: the
//   AutoAttack test binary took 96.5 s passive, 33.6 s with the bounded spin
//   (a tiny BatchNorm ResNet's AutoAttack 54.4 s against 13.1 s), and the
//   Rust stage's tests about 170 s against 90 s, compilation aside
//   (2-core machine, alone).
const userChoseOpenmp = process.env.OMP_WAIT_POLICY !== undefined || process.env.GOMP_SPINCOUNT !== undefined;
const passive = userChoseOpenmp ? {} : { OMP_WAIT_POLICY: 'PASSIVE' };
const boundedSpin = userChoseOpenmp ? {} : { GOMP_SPINCOUNT: OPENMP_SPIN_ROUNDS };
const run = (cmd, args, env = {}, openmp = passive) =>
  execFileSync(cmd, args, { cwd: root, stdio: 'inherit', env: envWith({ ...openmp, ...env }) });

// One line per stage with its time, at the end (and as each stage ends).
const stages = [];
let stageStarted = Date.now();
const stageDone = (name) => {
  const seconds = Math.round((Date.now() - stageStarted) / 1000);
  stages.push(`${name} ${seconds} s`);
  console.error(`test: ${name} took ${seconds} s`);
  stageStarted = Date.now();
};

const libtorch = resolveLibtorch({ provision: false });
run('cargo', ['fmt', '--all', '--check']);
run('cargo', ['clippy', '--release', ...cargoTarget, '--all-targets', '-q', '--', '-D', 'warnings'], libtorch.env);
// Includes the contract check: ts/generated must equal what the Rust serde
// types generate (config::ts_contract); when it does not, the test rewrites
// it and fails, so a clone with stale committed files fails here.
stageDone('format and lint');
// The same --target, profile and features as the addon build (st-native named
// beside st-core, which has no Rust tests of its own): cargo reuses the
// dependencies `npm ci` compiled (scripts/cargo-target.mjs) and compiles only
// st-core's tests.
run('cargo', ['test', '--release', ...cargoTarget, '-p', 'st-core', '-p', 'st-native'], libtorch.env, boundedSpin);
stageDone('Rust tests');
// Parity with an independent PyTorch implementation on the same libtorch:
// the batched ST step (inner points, loss, gradients, BatchNorm statistics)
// against separate forwards, float64, SmallCNN and a BatchNorm ResNet.
if (libtorch.python) {
  for (const model of ['small_cnn', 'resnet']) {
    const dir = mkdtempSync(path.join(tmpdir(), `st-parity-${model}-`));
    run('cargo', ['run', '--release', '-q', ...cargoTarget, '--example', 'st_parity', '--', dir, model], libtorch.env);
    run(libtorch.python, ['-W', 'ignore', path.join(root, 'benches', 'reference', 'st_reference.py'), 'parity', dir]);
    rmSync(dir, { recursive: true, force: true });
    // The methods ST is compared with, against benches/reference/methods_reference.py
    // (written from their papers and the authors' code): inner points, loss,
    // gradients, BatchNorm statistics; for AWP the perturbed and restored weights.
    for (const method of ['trades', 'mart', 'collaborative', 'trades_awp', 'st_awp']) {
      const mdir = mkdtempSync(path.join(tmpdir(), `${method}-parity-${model}-`));
      run('cargo', ['run', '--release', '-q', ...cargoTarget, '--example', 'st_parity', '--', mdir, model, method], libtorch.env);
      run(libtorch.python, ['-W', 'ignore', path.join(root, 'benches', 'reference', 'methods_reference.py'), 'parity', mdir]);
      rmSync(mdir, { recursive: true, force: true });
    }
  }
} else {
  console.error('\n*** PyTorch parity check NOT RUN: no Python with torch 2.11.0 (LIBTORCH build). Run scripts/provision-libtorch.sh to enable it. ***\n');
}
// Export: every checkpoint st-native writes loads into the reference PyTorch
// definitions (benches/reference/models.py) with a plain
// load_state_dict(safetensors.torch.load_file(path)) and gives the same
// logits. Also installs what the attack agreement test (ava, below) needs.
if (libtorch.python) {
  ensureTestPackages(libtorch.python);
  const dir = mkdtempSync(path.join(tmpdir(), 'st-export-'));
  run('cargo', ['run', '--release', '-q', ...cargoTarget, '--example', 'export_fixture', '--', dir], libtorch.env);
  run(libtorch.python, ['-W', 'ignore', path.join(root, 'benches', 'reference', 'export_check.py'), dir]);
  rmSync(dir, { recursive: true, force: true });
} else {
  console.error('\n*** PyTorch export round trip and torchattacks agreement NOT RUN: no Python with torch 2.11.0. ***\n');
}
stageDone('PyTorch parity and export');
run('npx', ['ava']);
stageDone('ava');
console.error(`test: ${stages.join(', ')}`);
