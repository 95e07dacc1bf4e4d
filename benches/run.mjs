// Side-by-side throughput of one ST training step (SmallCNN, K inner steps,
// SGD step included): st-native's core, batched and separate branches, and
// the PyTorch reference (benches/reference/st_reference.py) on the same
// libtorch, same threads, one after another in one run. Prints a table and
// ratios; numbers from different runs or machines are not comparable.
//
//   npm run bench                  # batch 128, K=10, 5 timed steps each
//   node benches/run.mjs 64 5 10   # batch, K, iterations
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { envWith, resolveLibtorch, root } from '../scripts/libtorch.mjs';

const [batch = '128', steps = '10', iters = '5'] = process.argv.slice(2);
const libtorch = resolveLibtorch({ provision: false });
const env = envWith(libtorch.env);
if (!libtorch.python) throw new Error('the benchmark needs a Python with torch 2.11.0 for the reference (scripts/provision-libtorch.sh)');
const json = (cmd, args) =>
  JSON.parse(execFileSync(cmd, args, { cwd: root, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim().split('\n').pop());

execFileSync('cargo', ['build', '--release', '-q', '--example', 'st_step_bench'], { cwd: root, env, stdio: 'inherit' });
const bin = path.join(root, 'target', 'release', 'examples', 'st_step_bench');
const python = libtorch.python;
const rows = [
  json(bin, [batch, steps, iters, 'batched']),
  json(bin, [batch, steps, iters, 'separate']),
  json(python, ['-W', 'ignore', path.join(root, 'benches', 'reference', 'st_reference.py'), 'bench', '--batch', batch, '--steps', steps, '--iters', iters]),
];
const ref = rows[2].imagesPerSec;
console.log(`ST training step, SmallCNN 1x28x28, batch ${batch}, K=${steps}, ${iters} timed steps, libtorch from ${libtorch.source}`);
for (const r of rows) {
  console.log(`  ${r.impl.padEnd(28)} ${r.imagesPerSec.toFixed(1).padStart(8)} images/s  ${(r.imagesPerSec / ref).toFixed(2)}x reference  (${r.threads} threads)`);
}
