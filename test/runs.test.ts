/**
 * listRuns and compareRuns over run folders written as training and `eval`
 * write them (config.json, summary.json, eval-best.json, eval-history/),
 * built here by hand: reading folders needs no training.
 */
import test from 'ava';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConfigError } from '../ts/config/errors.js';
import type { ConfigOverrides } from '../ts/config/presets.js';
import { resolveConfig } from '../ts/config/resolve.js';
import { compareRuns, listRuns } from '../ts/experiment/runs.js';
import type { AttackSpec, TrainSummary } from '../ts/native-types.js';
import { cli } from './helpers/cli.js';

const root = mkdtempSync(path.join(tmpdir(), 'st-runs-'));

const pgd20: AttackSpec = { kind: 'pgd', name: 'pgd20', norm: 'linf', epsilon: 0.2, stepSize: 0.02, steps: 20, restarts: 1, randomStart: true, keep: 'best' };
const aa: AttackSpec = { kind: 'autoAttack', name: 'aa', norm: 'linf', epsilon: 0.2, version: 'standard' };
const clean: AttackSpec = { kind: 'clean', name: 'clean' };

function evalFile(file: string, time: string, checkpoint: string, attacks: [AttackSpec, number][]): void {
  mkdirSync(path.dirname(file), { recursive: true });
  const doc = {
    attacks: attacks.map(([spec, accuracy]) => ({ name: spec.name, spec, accuracy, correct: Math.round(accuracy * 100), samples: 100 })),
    provenance: { time },
    target: { kind: 'run', runDir: '.', checkpoint },
  };
  writeFileSync(file, JSON.stringify(doc));
}

function makeRun(rel: string, overrides: ConfigOverrides, command: string | null, acc: { clean: number; robust: number }, status: 'completed' | 'cancelled' | null = 'completed'): string {
  const dir = path.join(root, rel);
  mkdirSync(path.join(dir, 'checkpoints'), { recursive: true });
  const config = resolveConfig({ preset: command?.match(/--preset (\S+)/)?.[1], overrides: [overrides] });
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ config, native: {}, provenance: { command } }));
  const result = { epoch: config.epochs, split: 'test' as const, cleanAcc: acc.clean, robustAcc: acc.robust, attack: 'PGD-20', samples: 500, seconds: 1 };
  const summary: TrainSummary = { status: status ?? 'completed', epochsCompleted: config.epochs, selectedOn: 'test', best: result, last: result, test: result, lastCheckpoint: null, bestCheckpoint: null, seconds: 10 };
  if (status !== null) writeFileSync(path.join(dir, 'summary.json'), JSON.stringify(summary));
  return dir;
}

const st = makeRun('st', { epochs: 3 }, 'st-native train --name st', { clean: 0.95, robust: 0.66 });
const trades = makeRun('trades', { method: { name: 'trades' }, epochs: 3 }, 'st-native train --preset mnist-trades-quick', { clean: 0.97, robust: 0.5 });
const beta = makeRun('group/seed-0', { method: { beta: 6 }, epochs: 2 }, null, { clean: 0.9, robust: 0.7 });
makeRun('killed', { epochs: 5 }, 'st-native train', { clean: 0, robust: 0 }, null);
// st: evaluated twice; the newer table wins, the older one is in eval-history/.
evalFile(path.join(st, 'eval-history', 'eval-best-2026-01-01T00-00-00.json'), '2026-01-01T00:00:00.000Z', 'best', [[clean, 0.95], [pgd20, 0.6], [aa, 0.5]]);
evalFile(path.join(st, 'eval-best.json'), '2026-02-01T00:00:00.000Z', 'best', [[clean, 0.95], [pgd20, 0.62]]);
// A later evaluation of the last checkpoint does not replace the best one's number.
evalFile(path.join(st, 'eval-last.json'), '2026-03-01T00:00:00.000Z', 'last', [[pgd20, 0.1]]);
evalFile(path.join(trades, 'eval-best.json'), '2026-02-01T00:00:00.000Z', 'best', [[clean, 0.97], [pgd20, 0.45], [aa, 0.4]]);

test('lists every run at any depth, with the accuracies of its own evaluation and of every eval output', (t) => {
  const rows = listRuns({ dir: root });
  t.deepEqual(rows.map((r) => r.name), ['group/seed-0', 'killed', 'st', 'trades']);
  const byName = Object.fromEntries(rows.map((r) => [r.name, r]));
  t.like(byName.st, { status: 'completed', preset: 'mnist-st-quick', method: 'st', model: 'small_cnn', dataset: 'mnist-embedded', epochs: 3, clean: 0.95, robust: 0.66, pgd20: 0.62, aa: 0.5 });
  t.like(byName.trades, { preset: 'mnist-trades-quick', method: 'trades', pgd20: 0.45, aa: 0.4 });
  t.like(byName.killed, { status: 'running or killed', clean: null, pgd20: null, epochsCompleted: 0 });
  // An API run without a command line: the preset whose model, dataset and method it has (none here: beta 6).
  t.is(byName['group/seed-0']!.preset, null);
});

test('sorts by a column or a config field, and filters on both', (t) => {
  t.deepEqual(listRuns({ dir: root, sort: 'pgd20' }).map((r) => r.name), ['st', 'trades', 'group/seed-0', 'killed']);
  t.deepEqual(listRuns({ dir: root, sort: 'clean:asc' }).map((r) => r.name), ['group/seed-0', 'st', 'trades', 'killed']);
  t.deepEqual(listRuns({ dir: root, filter: 'method=st,epochs<5' }).map((r) => r.name), ['group/seed-0', 'st']);
  t.deepEqual(listRuns({ dir: root, filter: 'clean>=95%' }).map((r) => r.name), ['st', 'trades']);
  t.deepEqual(listRuns({ dir: root, filter: 'method.beta>3,method=st' }).map((r) => r.name), ['group/seed-0']);
  t.deepEqual(listRuns({ dir: root, filter: 'name~tra' }).map((r) => r.name), ['trades']);
  t.throws(() => listRuns({ dir: root, sort: 'pgd2O' }), { instanceOf: ConfigError, message: /unknown key "pgd2O" \(did you mean "pgd20"\?\)/ });
  t.throws(() => listRuns({ dir: root, filter: 'clean' }), { instanceOf: ConfigError, message: /--filter: expected KEY OP VALUE/ });
});

test('compares runs: the config fields that differ and the attack rows they share', (t) => {
  const c = compareRuns([st, trades]);
  t.deepEqual(c.runs.map((r) => r.name), ['st', 'trades']);
  const keys = c.differences.map((d) => d.key);
  t.true(keys.includes('method.name'));
  t.true(keys.includes('method.reg'));
  t.false(keys.includes('epochs'));
  t.false(keys.includes('runName'));
  t.deepEqual(c.differences.find((d) => d.key === 'method.name')!.values, ['st', 'trades']);
  // The newest table of each (st's AutoAttack is in its history).
  t.deepEqual(c.sharedAttacks, [
    { name: 'clean', accuracies: [0.95, 0.97], samples: [100, 100] },
    { name: 'pgd20', accuracies: [0.62, 0.45], samples: [100, 100] },
    { name: 'aa', accuracies: [0.5, 0.4], samples: [100, 100] },
  ]);
  // A folder of runs stands for its runs.
  t.deepEqual(compareRuns([path.join(root, 'group'), st]).runs.map((r) => r.name), ['group/seed-0', 'st']);
  t.throws(() => compareRuns([path.join(root, 'nowhere')]), { instanceOf: ConfigError, message: /no such folder/ });
  void beta;
});

test('the CLI prints the list, its JSON and CSV, and the comparison', (t) => {
  const list = cli('runs', 'list', root, '--sort', 'pgd20');
  t.is(list.status, 0, list.stderr);
  t.regex(list.stdout, /^run\s+status\s+preset\s+method\s+model\s+dataset\s+epochs\s+clean\s+robust\s+PGD-20\s+AA$/m);
  t.regex(list.stdout, /^st\s+completed\s+mnist-st-quick\s+st\s+small_cnn\s+mnist-embedded\s+3\s+95\.0%\s+66\.0% PGD-20\s+62\.0%\s+50\.0%$/m);
  const json = JSON.parse(cli('runs', 'list', root, '--json').stdout) as { name: string; aa: number | null }[];
  t.is(json.find((r) => r.name === 'trades')!.aa, 0.4);
  t.regex(cli('runs', 'list', root, '--csv').stdout, /^runDir,name,status,preset,method,model,dataset,epochs,epochsCompleted,clean,robust,robustAttack,pgd20,aa$/m);
  const compare = cli('runs', 'compare', st, trades);
  t.is(compare.status, 0, compare.stderr);
  t.regex(compare.stdout, /^method\.name\s+st\s+trades$/m);
  t.regex(compare.stdout, /^pgd20\s+62\.0%\s+45\.0%$/m);
  const bad = cli('runs', 'list', root, '--filter', 'bogus=1');
  t.is(bad.status, 2);
  t.regex(bad.stderr, /--filter: unknown key "bogus"/);
});
