// Side-by-side AutoAttack: st-native's components and standard AutoAttack
// against torchattacks 3.5.1 configured to the standard settings (100
// iterations, 9 targets, 5000 Square queries; benches/reference/
// autoattack_reference.py), on the same model, the same images and the same
// libtorch with the same thread count, one after the other in one run.
// Prints accuracy and time of each and the speed ratio; numbers from
// different runs or machines are not comparable. Run with nothing else on
// the machine.
//
//   npm run bench:aa                                   # 200 digits, eps 0.2, adversarially trained SmallCNN
//   node benches/autoattack.mjs --n 500 --components aa --seed 1
//
// The model: one epoch of mnist-st-quick trained once into
// target/bench-autoattack (kept between runs), and the first N test digits.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { cargoTarget, releaseDir } from '../scripts/cargo-target.mjs';
import { envWith, resolveLibtorch, root } from '../scripts/libtorch.mjs';
import { ensureTestPackages } from '../scripts/python-test-deps.mjs';

const { values } = parseArgs({
  options: {
    n: { type: 'string', default: '200' },
    eps: { type: 'string', default: '0.2' },
    seed: { type: 'string', default: '0' },
    components: { type: 'string', default: 'apgd-ce,apgd-t,fab-t,square,aa' },
    threads: { type: 'string', default: '0' },
    model: { type: 'string' },
  },
});
const libtorch = resolveLibtorch({ provision: false });
const env = envWith(libtorch.env);
if (!libtorch.python) throw new Error('the benchmark needs a Python with torch 2.11.0 for the reference (scripts/provision-libtorch.sh)');
const python = libtorch.python;
ensureTestPackages(python);
const threads = values.threads === '0' ? String(Math.max(1, Math.min(16, (await import('node:os')).availableParallelism()))) : values.threads;

execFileSync('cargo', ['build', '--release', '-q', ...cargoTarget, '--example', 'aa_component'], { cwd: root, env, stdio: 'inherit' });
const bin = path.join(releaseDir, 'examples', 'aa_component');

const work = path.join(root, 'target', 'bench-autoattack');
const checkpoint = values.model ?? path.join(work, 'runs', 'st', 'checkpoints', 'best.safetensors');
const images = path.join(work, 'images.safetensors');
const cli = (...args) => execFileSync(process.execPath, [path.join(root, 'bin', 'st-native.js'), ...args], { cwd: root, env, stdio: ['ignore', 'ignore', 'inherit'] });
if (!existsSync(checkpoint)) {
  mkdirSync(work, { recursive: true });
  console.error('bench: training the model once (mnist-st-quick, 1 epoch) into', work);
  cli('train', '--preset', 'mnist-st-quick', '--epochs', '1', '--device', 'cpu', '--runs-dir', path.join(work, 'runs'), '--name', 'st', '--json');
}
if (!existsSync(images)) cli('eval', path.dirname(path.dirname(checkpoint)), '--attacks', 'clean', '--n', '2000', '--device', 'cpu', '--no-write', '--save-adversarial', images);

const json = (cmd, args) =>
  JSON.parse(execFileSync(cmd, args, { cwd: root, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim().split('\n').pop());
const common = [checkpoint, images];
const flags = ['--eps', values.eps, '--n', values.n, '--seed', values.seed, '--threads', threads];
console.log(`AutoAttack, SmallCNN 1x28x28 (ST, 1 epoch), L-inf eps ${values.eps}, first ${values.n} test digits, seed ${values.seed}, ${threads} threads, libtorch from ${libtorch.source}`);
console.log(`  ${'component'.padEnd(10)} ${'st-native'.padStart(10)} ${'torchattacks'.padStart(13)} ${'st-native s'.padStart(12)} ${'torchattacks s'.padStart(15)} ${'speed-up'.padStart(9)}`);
const rows = [];
for (const c of values.components.split(',')) {
  const ours = json(bin, [...common, c, ...flags]);
  const ref = json(python, ['-W', 'ignore', path.join(root, 'benches', 'reference', 'autoattack_reference.py'), ...common, c, ...flags]);
  rows.push({ component: c, ours, ref });
  const pct = (x) => `${(100 * x).toFixed(1)}%`;
  console.log(
    `  ${c.padEnd(10)} ${pct(ours.accuracy).padStart(10)} ${pct(ref.accuracy).padStart(13)} ${ours.seconds.toFixed(1).padStart(12)} ${ref.seconds.toFixed(1).padStart(15)} ${`${(ref.seconds / ours.seconds).toFixed(2)}x`.padStart(9)}`,
  );
  if (c === 'aa') {
    for (const s of Object.keys(ours.stages)) console.log(`    after ${s.padEnd(8)} ${pct(ours.stages[s]).padStart(8)} ${pct(ref.stages[s]).padStart(13)}`);
  }
}
console.log(`  clean accuracy ${(100 * rows[0].ours.clean).toFixed(1)}% (st-native) / ${(100 * rows[0].ref.clean).toFixed(1)}% (torchattacks)`);
