// Side-by-side throughput of one ST training step (SmallCNN, K inner steps,
// SGD step included): st-native's core, batched and separate branches, in
// f32, bf16 (CPU autocast) and channels_last, and the PyTorch reference
// (benches/reference/st_reference.py) in the same variants, on the same
// libtorch, same threads, one after another in one run. Prints a table and
// ratios (to the reference in the same variant, and to f32); numbers from
// different runs or machines are not comparable.
//
//   npm run bench                  # batch 128, K=10, 5 timed steps each
//   node benches/run.mjs 64 5 10   # batch, K, iterations
//   node benches/run.mjs --quick   # batch 16, K=2, 1 step: checks it runs
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { cargoTarget, releaseDir } from '../scripts/cargo-target.mjs';
import { envWith, resolveLibtorch, root } from '../scripts/libtorch.mjs';

const quick = process.argv.includes('--quick') || process.env.ST_BENCH_QUICK === '1';
const positional = process.argv.slice(2).filter((a) => a !== '--quick');
const [batch = quick ? '16' : '128', steps = quick ? '2' : '10', iters = quick ? '1' : '5'] = positional;
const libtorch = resolveLibtorch({ provision: false });
const env = envWith(libtorch.env);
if (!libtorch.python) throw new Error('the benchmark needs a Python with torch 2.11.0 for the reference (scripts/provision-libtorch.sh)');
const json = (cmd, args) =>
  JSON.parse(execFileSync(cmd, args, { cwd: root, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim().split('\n').pop());

execFileSync('cargo', ['build', '--release', '-q', ...cargoTarget, '--example', 'st_step_bench'], { cwd: root, env, stdio: 'inherit' });
const bin = path.join(releaseDir, 'examples', 'st_step_bench');
const python = libtorch.python;
const reference = (precision, format) =>
  json(python, ['-W', 'ignore', path.join(root, 'benches', 'reference', 'st_reference.py'), 'bench', '--batch', batch, '--steps', steps,
    '--iters', iters, '--precision', precision, '--memory-format', format]);
const variants = [['f32', 'contiguous'], ['bf16', 'contiguous'], ['f32', 'channels_last']];
console.log(`ST training step, SmallCNN 1x28x28, batch ${batch}, K=${steps}, ${iters} timed steps, libtorch from ${libtorch.source}`);
let f32 = null;
for (const [precision, format] of variants) {
  const rows = [
    json(bin, [batch, steps, iters, 'batched', precision, format]),
    ...(precision === 'f32' && format === 'contiguous' ? [json(bin, [batch, steps, iters, 'separate', precision, format])] : []),
    reference(precision, format),
  ];
  const ref = rows.at(-1).imagesPerSec;
  f32 ??= { ours: rows[0].imagesPerSec, ref };
  console.log(`${precision}, ${format}:`);
  for (const r of rows) {
    const base = r.impl.startsWith('pytorch') ? f32.ref : f32.ours;
    console.log(`  ${r.impl.padEnd(44)} ${r.imagesPerSec.toFixed(1).padStart(8)} images/s  ${(r.imagesPerSec / ref).toFixed(2)}x reference  ${(r.imagesPerSec / base).toFixed(2)}x its f32  (${r.threads} threads)`);
  }
}
