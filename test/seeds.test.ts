/**
 * trainSeeds on the embedded digits, kept tiny (128 images, one epoch, one
 * attack step): the results are the runs' own numbers summarised, and a
 * group continued later trains only the seeds without a completed summary.
 */
import test from 'ava';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConfigError } from '../ts/config/errors.js';
import { parseSeedsArgument } from '../ts/cli/experiments.js';
import { summarize } from '../ts/experiment/stats.js';
import { trainSeeds, type SeedsEvent } from '../ts/experiment/seeds.js';
import { cli } from './helpers/cli.js';
import { tiny, tinyArgs } from './helpers/tiny.js';

const runsDir = mkdtempSync(path.join(tmpdir(), 'st-seeds-'));

test.serial('two seeds: each its own run, every metric summarised with the Student-t interval, written as JSON, CSV and Markdown', async (t) => {
  const events: SeedsEvent[] = [];
  const r = await trainSeeds({ overrides: tiny(runsDir), seeds: [3, 5], name: 'group', onEvent: (e) => void events.push(e) });
  t.is(r.status, 'completed');
  t.is(r.dir, path.join(runsDir, 'group'));
  t.deepEqual(r.runs.map((x) => [x.seed, path.basename(x.runDir), x.reused]), [[3, 'seed-3', false], [5, 'seed-5', false]]);
  // Each run trained with its own seed.
  for (const run of r.runs) t.is((JSON.parse(readFileSync(path.join(run.runDir, 'config.json'), 'utf8')) as { config: { seed: number } }).config.seed, run.seed);
  const clean = r.metrics.find((m) => m.key === 'clean')!;
  t.deepEqual(clean.values, r.runs.map((x) => x.summary.test!.cleanAcc));
  const { n, mean, sd, ci95, low, high } = clean;
  t.deepEqual({ n, mean, sd, ci95, low, high }, summarize(clean.values));
  t.truthy(r.metrics.find((m) => m.key === 'robust'));
  t.deepEqual(events.filter((e) => e.type !== 'train').map((e) => `${e.type} ${e.seed}`), ['seed-start 3', 'seed-done 3', 'seed-start 5', 'seed-done 5']);
  t.true(events.some((e) => e.type === 'train' && e.event.type === 'eval'));
  const json = JSON.parse(readFileSync(r.files.json, 'utf8')) as { metrics: { key: string; ci95: number }[]; runs: { seed: number }[] };
  t.is(json.metrics.find((m) => m.key === 'clean')!.ci95, clean.ci95!);
  const csv = readFileSync(r.files.csv, 'utf8').trim().split('\n');
  t.is(csv[0], 'metric,label,n,mean,sd,ci95,low,high');
  t.regex(csv.find((l) => l.startsWith('clean,'))!, new RegExp(`^clean,clean,2,${clean.mean},`));
  t.is(readFileSync(r.files.runsCsv, 'utf8').trim().split('\n').length, 3);
  t.regex(readFileSync(r.files.markdown, 'utf8'), /\| clean \| [\d.]+ ± [\d.]+% \|/);
});

test.serial('continued: completed seeds are kept untouched, an interrupted one (no completed summary) is trained again', async (t) => {
  const dir = path.join(runsDir, 'group');
  const keptSummary = path.join(dir, 'seed-3', 'summary.json');
  const before = statSync(keptSummary).mtimeMs;
  // seed-5 as a kill -9 leaves it: a folder without a summary.
  rmSync(path.join(dir, 'seed-5', 'summary.json'));
  const events: SeedsEvent[] = [];
  const r = await trainSeeds({ overrides: tiny(runsDir), seeds: [3, 5], name: 'group', onEvent: (e) => void events.push(e) });
  t.deepEqual(events.filter((e) => e.type !== 'train').map((e) => `${e.type} ${e.seed}`), ['seed-skipped 3', 'seed-start 5', 'seed-done 5']);
  t.is(statSync(keptSummary).mtimeMs, before);
  t.deepEqual(r.runs.map((x) => x.reused), [true, false]);
  // Trained again in its own folder, not beside the leftovers.
  t.false(existsSync(path.join(dir, 'seed-5-2')));
});

test.serial('the CLI continues the same group (nothing left to train) and prints mean ± CI', (t) => {
  const r = cli('train', '--seeds', '3,5', '--name', 'group', ...tinyArgs(runsDir));
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /^2 seeds of 2, mean ± 95% CI/m);
  t.regex(r.stdout, /^clean\s+[\d.]+ ± [\d.]+%/m);
  t.regex(r.stderr, /seed 3 \(1\/2\): already complete, kept/);
  const json = cli('train', '--seeds', '3,5', '--name', 'group', '--json', ...tinyArgs(runsDir));
  t.is(json.status, 0, json.stderr);
  t.deepEqual((JSON.parse(json.stdout) as { seeds: number[] }).seeds, [3, 5]);
  const bad = cli('train', '--seeds', 'x', ...tinyArgs(runsDir));
  t.is(bad.status, 2);
  t.regex(bad.stderr, /--seeds: expected a count/);
});

test.serial('a group is continued only with its own settings, and bad options fail before any work', async (t) => {
  await t.throwsAsync(trainSeeds({ overrides: [...tiny(runsDir), { method: { beta: 9 } }], seeds: [3], name: 'group' }), {
    instanceOf: ConfigError,
    message: /method\.beta: differs from .*seeds\.json \(recorded: 3, now: 9\)/,
  });
  await t.throwsAsync(trainSeeds({ overrides: tiny(runsDir), seeds: [1, 1] }), { instanceOf: ConfigError, message: /options\.seeds: expected every seed once/ });
  await t.throwsAsync(trainSeeds({ overrides: tiny(runsDir), seeds: 0 }), { instanceOf: ConfigError, message: /options\.seeds/ });
});

test('--seeds takes a count or a list', (t) => {
  t.deepEqual(parseSeedsArgument('5'), [0, 1, 2, 3, 4]);
  t.deepEqual(parseSeedsArgument('0,1,2,3,4'), [0, 1, 2, 3, 4]);
  t.deepEqual(parseSeedsArgument('7, 11'), [7, 11]);
  t.throws(() => parseSeedsArgument('five'), { message: /expected a count \(5\) or a comma-separated list/ });
  t.throws(() => parseSeedsArgument('1,1'), { message: /every seed once/ });
  t.throws(() => parseSeedsArgument('0'), { instanceOf: ConfigError });
});
