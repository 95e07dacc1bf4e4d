/**
 * bf16 training (libtorch CPU autocast, f32 master weights) on the embedded
 * MNIST digits reaches the clean accuracy of f32 training within a margin.
 *
 * The job: the default preset (mnist-st-quick: ST, K 5, eps 0.2) on the first
 * 600 training digits, 2 epochs of batch 16 (76 SGD steps), one thread,
 * evaluated once after the last epoch on the first 200 test digits; seed 0
 * in f32 and bf16 (bf16 is emulated on CPUs without AVX512-BF16, about 12x
 * slower than f32, so one seed: the margin below is for a broken path, which
 * one seed shows as well as two). Measured when seeds 0 and 1 both ran,
 * clean accuracy: seed 0 f32 0.790, bf16 0.755;
 * seed 1 f32 0.780, bf16 0.765 (bf16 1.5-3.5 points below f32, f32 seeds
 * 1 point apart). 300 digits of batch 32 did not learn at all in f32 (0.10).
 * Two seeds are too few to call bf16's small deficit real or noise; the
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
    '--set', `seed=${seed}`, '--set', `precision=${precision}`, '--set', 'threads=1');
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
