/**
 * bf16 training (libtorch CPU autocast, f32 master weights) on the embedded
 * MNIST digits reaches the clean accuracy of f32 training within a margin.
 *
 * The job: the default preset (mnist-st-quick: ST, eps 0.2) with K 2 inner
 * steps on the first 600 training digits, 2 epochs of batch 16 (76 SGD
 * steps), one thread, evaluated once after the last epoch on the first 200
 * test digits (PGD with 2 steps: only the clean accuracy is compared); seed 0
 * in f32 and bf16. bf16 is emulated on CPUs without AVX512-BF16, about 10x
 * slower than f32 (bf16 142 s, f32 14 s here), so one seed: the margin below
 * is for a broken path, which one seed shows as well as two. Measured with
 * both seeds, clean accuracy: seed 0 f32 0.770, bf16 0.775; seed 1 f32 0.745,
 * bf16 0.750 (K 5, as the preset, gave 0.790/0.755 and 0.780/0.765 in 2.5x
 * the time). 300 digits of batch 32 did not learn at all in f32 (0.10). The
 * margin (10 points) catches a broken bf16 path (a net that does not learn,
 * a non-finite loss), not a few points.
 */
import test from 'ava';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { cli } from './helpers/cli.js';

const runs = mkdtempSync(path.join(tmpdir(), 'st-precision-runs-'));

interface Done {
  type: string;
  status?: string;
  last?: { cleanAcc: number; robustAcc: number } | null;
}

/** Clean accuracy |bf16 - f32| allowed, per seed (see the measurements above). */
const MARGIN = 0.1;

function trainAt(precision: string, seed: number): number {
  const name = `${precision}-${seed}`;
  const r = cli('train', '--json', '--runs-dir', runs, '--name', name, '--device', 'cpu', '--epochs', '2',
    '--set', 'batchSize=16', '--set', 'dataset.trainSize=600', '--set', 'dataset.testSize=200',
    '--set', `seed=${seed}`, '--set', `precision=${precision}`, '--set', 'threads=1',
    '--set', 'method.steps=2', '--set', 'eval.steps=2');
  if (r.status !== 0) throw new Error(`${name} failed (${r.status}): ${r.stderr}`);
  const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Done);
  const done = events.at(-1)!;
  if (done.type !== 'done' || done.status !== 'completed' || !done.last) throw new Error(`${name}: ${JSON.stringify(done)}`);
  return done.last.cleanAcc;
}

test.serial('bf16 training reaches the clean accuracy of f32 within the margin (seed 0)', (t) => {
  for (const seed of [0]) {
    const f32 = trainAt('f32', seed);
    const bf16 = trainAt('bf16', seed);
    t.log(`seed ${seed}: clean f32 ${f32}, bf16 ${bf16}`);
    t.true(bf16 > 0.5, `bf16 did not learn: ${bf16}`);
    t.true(Math.abs(bf16 - f32) <= MARGIN, `seed ${seed}: bf16 ${bf16} vs f32 ${f32}`);
  }
});
