// Speed on a busy machine: the ST training step and standard AutoAttack,
// st-native against the PyTorch reference and torchattacks, first on a
// quiet machine, then under a fixed load, interleaved in one run.
//
// The load: one busy-looping process per core (`node -e 'for(;;){}'`), the
// worst case of a shared server. Each implementation runs as it ships:
// st-native with its bounded OpenMP spinning (GOMP_SPINCOUNT=20000, set when
// the addon loads; see ts/native-loader.ts), the references with libgomp's
// default (300,000 rounds). For the ST step a third row runs the reference
// with st-native's setting too, to show how much of the difference is that.
//
//   npm run bench:load                # ST step batch 128, K=10; AutoAttack on 30 digits
//   node benches/load.mjs --aa-n 100 --skip-aa
import { execFileSync, spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { cargoTarget, releaseDir } from '../scripts/cargo-target.mjs';
import { envWith, resolveLibtorch, root } from '../scripts/libtorch.mjs';
import { ensureTestPackages } from '../scripts/python-test-deps.mjs';

const { values } = parseArgs({
  options: {
    'aa-n': { type: 'string', default: '30' },
    iters: { type: 'string', default: '3' },
    'skip-aa': { type: 'boolean', default: false },
  },
});
const libtorch = resolveLibtorch({ provision: false });
if (!libtorch.python) throw new Error('the benchmark needs a Python with torch 2.11.0 for the references (scripts/provision-libtorch.sh)');
const python = libtorch.python;
const base = envWith(libtorch.env);
delete base.OMP_WAIT_POLICY;
delete base.GOMP_SPINCOUNT;
const shipped = { ...base, GOMP_SPINCOUNT: '20000' };
const cores = availableParallelism();

execFileSync('cargo', ['build', '--release', '-q', ...cargoTarget, '--example', 'st_step_bench', '--example', 'aa_component'], { cwd: root, env: base, stdio: 'inherit' });
const examples = path.join(releaseDir, 'examples');
const json = (cmd, args, env) =>
  JSON.parse(execFileSync(cmd, args, { cwd: root, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim().split('\n').pop());

const stStep = [
  ['st-native (as shipped)', () => json(path.join(examples, 'st_step_bench'), ['128', '10', values.iters, 'batched'], shipped).imagesPerSec],
  ['PyTorch reference (default)', () => json(python, ['-W', 'ignore', path.join(root, 'benches', 'reference', 'st_reference.py'), 'bench', '--batch', '128', '--steps', '10', '--iters', values.iters], base).imagesPerSec],
  ['PyTorch reference (spin 20000)', () => json(python, ['-W', 'ignore', path.join(root, 'benches', 'reference', 'st_reference.py'), 'bench', '--batch', '128', '--steps', '10', '--iters', values.iters], shipped).imagesPerSec],
];

let aa = [];
if (!values['skip-aa']) {
  ensureTestPackages(python);
  // The model and images benches/autoattack.mjs prepares (trained once, kept).
  execFileSync(process.execPath, [path.join(root, 'benches', 'autoattack.mjs'), '--n', '1', '--components', 'apgd-ce'], { cwd: root, env: base, stdio: 'ignore' });
  const work = path.join(root, 'target', 'bench-autoattack');
  const args = [path.join(work, 'runs', 'st', 'checkpoints', 'best.safetensors'), path.join(work, 'images.safetensors'), 'aa', '--eps', '0.2', '--n', values['aa-n'], '--seed', '0', '--threads', String(cores)];
  const reference = path.join(root, 'benches', 'reference', 'autoattack_reference.py');
  // Images per second, so that higher is faster as for the ST step.
  const rate = (r) => Number(values['aa-n']) / r.seconds;
  aa = [
    ['st-native (as shipped)', () => rate(json(path.join(examples, 'aa_component'), args, shipped))],
    ['torchattacks (default)', () => rate(json(python, ['-W', 'ignore', reference, ...args], base))],
  ];
}

function startLoad() {
  return Array.from({ length: cores }, () => spawn(process.execPath, ['-e', 'for(;;){}'], { stdio: 'ignore' }));
}

const results = {};
for (const phase of ['quiet', 'loaded']) {
  const load = phase === 'loaded' ? startLoad() : [];
  try {
    for (const [bench, rows] of [['ST step', stStep], ['AutoAttack', aa]]) {
      for (const [name, run] of rows) (results[`${bench}|${name}`] ??= {})[phase] = run();
    }
  } finally {
    for (const p of load) p.kill('SIGKILL');
  }
}

console.log(`Speed quiet and under load (${cores} busy processes on ${cores} cores), ${cores} threads each, libtorch from ${libtorch.source}`);
for (const [bench, rows, unit] of [['ST step', stStep, 'images/s (batch 128, K=10)'], ['AutoAttack', aa, `images/s (standard, ${values['aa-n']} digits)`]]) {
  if (rows.length === 0) continue;
  console.log(`${bench}, ${unit}:`);
  console.log(`  ${''.padEnd(34)} ${'quiet'.padStart(8)} ${'loaded'.padStart(8)} ${'loaded/quiet'.padStart(13)}`);
  for (const [name] of rows) {
    const r = results[`${bench}|${name}`];
    const fixed = (x) => x.toFixed(x < 10 ? 2 : 1);
    console.log(`  ${name.padEnd(34)} ${fixed(r.quiet).padStart(8)} ${fixed(r.loaded).padStart(8)} ${(r.loaded / r.quiet).toFixed(2).padStart(13)}`);
  }
  const ours = results[`${bench}|${rows[0][0]}`];
  const ref = results[`${bench}|${rows[1][0]}`];
  console.log(`  st-native / reference as shipped: quiet ${(ours.quiet / ref.quiet).toFixed(2)}x, loaded ${(ours.loaded / ref.loaded).toFixed(2)}x`);
}
