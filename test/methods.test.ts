/**
 * Every method ST is compared with trains from the CLI on the embedded MNIST
 * digits; TRADES, MART, TRADES-AWP and ST-AWP end up clearly more robust than
 * plain cross-entropy training under the same attack. Serial: each test
 * trains, and the machine has two cores.
 *
 * The job, the same for every method: the method's `mnist-<method>-quick`
 * preset on the first 2,000 training digits, 2 epochs of batch 32 (125 SGD
 * steps), eps 0.2, step 0.04, inner steps K 5 (the presets'), evaluated once
 * after the last epoch with PGD-20 at eps 0.2 on the first 500 test digits:
 * the job of `npm run compare` (scripts/compare-methods.mjs), seed 0.
 *
 * Thresholds, from measurements of exactly this job (`npm run compare`, seeds
 * 0, 1, 2, 2-core machine; the test runs seed 0), PGD-20 accuracy in %:
 *
 *   natural        24.6 (seeds: 17.0-24.6), clean 89.8 (87.6-91.6)
 *   TRADES         55.2 (44.0-55.2)
 *   MART           34.6 (34.6-40.0), clean 58.0: MART has no clean CE term
 *                  and trains slowest at this budget
 *   TRADES-AWP     44.8 (39.2-44.8)
 *   ST-AWP         49.2 (47.4-49.2)
 *   collaborative  29.2 (15.4-29.2), clean 78.2 (70.6-78.8)
 *
 * Each method must beat a floor and the natural baseline by a margin about
 * half its measured lead (MART: 5 points of its 10). Collaborative examples
 * alone (Eq. 5) are NOT clearly more robust than plain training at this
 * budget (their seeds straddle the baseline's), so for them the test asks
 * only that they train.
 */
import test from 'ava';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { cli } from './helpers/cli.js';

const runs = mkdtempSync(path.join(tmpdir(), 'st-methods-runs-'));

interface EvalResult {
  cleanAcc: number;
  robustAcc: number;
  attack: string;
  samples: number;
}
interface Event {
  type: string;
  method?: string;
  status?: string;
  last?: EvalResult | null;
}

/** Trains `preset` with the job above through the CLI; returns its start and done events. */
function trainJob(preset: string): { start: Event; done: Event; seconds: number } {
  const t0 = Date.now();
  const r = cli('train', '--json', '--preset', preset, '--runs-dir', runs, '--name', preset, '--device', 'cpu',
    '--epochs', '2', '--set', 'batchSize=32', '--set', 'dataset.trainSize=2000', '--set', 'dataset.testSize=500',
    '--set', 'evalSchedule.every=2');
  if (r.status !== 0) throw new Error(`${preset} failed (${r.status}): ${r.stderr}`);
  const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Event);
  return { start: events[0]!, done: events.at(-1)!, seconds: (Date.now() - t0) / 1000 };
}

let natural: EvalResult;

test.serial('the natural baseline trains (clean above 80 %) and is not robust', (t) => {
  const { done, seconds } = trainJob('mnist-natural-quick');
  t.is(done.status, 'completed');
  natural = done.last!;
  t.log(`natural: clean ${natural.cleanAcc}, ${natural.attack} ${natural.robustAcc} (${seconds.toFixed(0)} s)`);
  t.is(natural.attack, 'pgd-20');
  t.is(natural.samples, 500);
  t.true(natural.cleanAcc > 0.8);
  t.true(natural.robustAcc < 0.4);
});

const methods: [preset: string, name: string, floor: number, margin: number][] = [
  ['mnist-trades-quick', 'trades', 0.4, 0.15],
  ['mnist-mart-quick', 'mart', 0.3, 0.05],
  ['mnist-trades-awp-quick', 'awp', 0.35, 0.1],
  ['mnist-st-awp-quick', 'awp', 0.4, 0.15],
];

for (const [preset, name, floor, margin] of methods) {
  test.serial(`${preset} trains from the CLI and is clearly more robust than natural training`, (t) => {
    const { start, done, seconds } = trainJob(preset);
    t.is(start.type, 'start');
    t.is(start.method, name);
    t.is(done.status, 'completed');
    const r = done.last!;
    t.log(`${preset}: clean ${r.cleanAcc}, ${r.attack} ${r.robustAcc} (${seconds.toFixed(0)} s); natural ${natural.robustAcc}`);
    t.true(r.robustAcc > floor, `PGD-20 ${r.robustAcc} <= ${floor}`);
    t.true(r.robustAcc > natural.robustAcc + margin, `PGD-20 ${r.robustAcc} vs natural ${natural.robustAcc} + ${margin}`);
  });
}

test.serial('mnist-collaborative-quick trains from the CLI (Eq. 5 alone: no robustness asked at this budget)', (t) => {
  const { start, done, seconds } = trainJob('mnist-collaborative-quick');
  t.is(start.method, 'collaborative');
  t.is(done.status, 'completed');
  const r = done.last!;
  t.log(`collaborative: clean ${r.cleanAcc}, ${r.attack} ${r.robustAcc} (${seconds.toFixed(0)} s); natural ${natural.robustAcc}`);
  t.true(r.cleanAcc > 0.6);
  t.is(r.attack, 'pgd-20');
});
