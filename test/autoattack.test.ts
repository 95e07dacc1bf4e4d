/**
 * `st-native eval --attacks aa` on the real CLI: the stage lines, the
 * per-stage breakdown in the table and the JSON, and resuming: Ctrl-C in the
 * middle of a stage leaves the per-point state beside the output, the same
 * command continues from it (`resumed`), and the result equals an
 * uninterrupted run's. A naturally trained SmallCNN (one epoch on the digits)
 * keeps it fast: most points fall to APGD-CE.
 */
import test from 'ava';
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { evaluate, type Evaluation } from 'st-native';
import { CRASH_SIGNS, spawnCli } from './helpers/child-run.js';
import { cli } from './helpers/cli.js';

const runs = mkdtempSync(path.join(tmpdir(), 'st-aa-'));
const runDir = path.join(runs, 'natural');
const EVAL = ['eval', runDir, '--attacks', 'clean,aa', '--n', '64', '--batch', '16', '--eps', '0.15', '--device', 'cpu'];
const stateFiles = () => readdirSync(runDir).filter((f) => f.endsWith('.autoattack-state.safetensors'));

test.before(() => {
  const r = cli('train', '--json', '--preset', 'mnist-natural-quick', '--epochs', '1', '--device', 'cpu', '--runs-dir', runs, '--name', 'natural', '--set', 'eval.steps=1', '--set', 'eval.maxSamples=64');
  if (r.status !== 0) throw new Error(r.stderr);
});

test.serial('Ctrl-C inside a stage saves the per-point state; the same command resumes to the uninterrupted result', async (t) => {
  const whole = cli(...EVAL, '--no-write', '--json');
  t.is(whole.status, 0, whole.stderr);
  const expected = JSON.parse(whole.stdout) as Evaluation;
  const aa = expected.attacks[1]!;
  t.deepEqual(aa.stages!.map((s) => s.name), ['apgd-ce', 'apgd-t', 'fab-t', 'square']);
  t.false(aa.resumed);
  t.true(aa.accuracy < expected.cleanAccuracy, 'AutoAttack broke something');

  // Plain output: stage lines. Ctrl-C once the second stage has begun.
  const child = spawnCli(EVAL);
  await child.waitForLine((l) => l.startsWith('aa: stage 2/4 apgd-t'), 120_000);
  child.proc.kill('SIGINT');
  const { code } = await child.exited;
  t.is(code, 130, child.stderr());
  t.notRegex(child.stderr(), CRASH_SIGNS);
  t.regex(child.stderr(), /progress is saved: the same command continues from it/);
  t.deepEqual(stateFiles(), ['eval-best.aa.autoattack-state.safetensors']);
  t.false(existsSync(path.join(runDir, 'eval-best.json')), 'no result written for a stopped evaluation');

  const again = cli(...EVAL, '--json');
  t.is(again.status, 0, again.stderr);
  const resumed = JSON.parse(again.stdout) as Evaluation;
  const r = resumed.attacks[1]!;
  t.true(r.resumed);
  t.is(r.correct, aa.correct);
  t.deepEqual(
    r.stages!.map((s) => [s.name, s.attacked, s.correct]),
    aa.stages!.map((s) => [s.name, s.attacked, s.correct]),
  );
  t.deepEqual(stateFiles(), [], 'the state is removed once complete');
  t.true(existsSync(path.join(runDir, 'eval-best.md')));
});

test.serial('the table shows the accuracy after each stage; --no-resume writes no state', (t) => {
  const r = cli(...EVAL, '--no-resume', '--no-write');
  t.is(r.status, 0, r.stderr);
  for (const stage of ['apgd-ce', 'apgd-t', 'fab-t', 'square']) t.regex(r.stdout, new RegExp(`after ${stage}\\s+\\d+\\.\\d%`));
  t.deepEqual(stateFiles(), []);
});

test.serial('a component asked for more targets than the other classes is refused, naming the field', async (t) => {
  const spec = { kind: 'apgdT', name: 'apgd-t12', norm: 'linf', epsilon: 0.1, steps: 10, restarts: 1, targets: 12 } as const;
  const e = await t.throwsAsync(evaluate({ runDir, attacks: [spec], n: 8, device: 'cpu', write: false }));
  t.regex(e!.message, /attacks\[0\]\.targets/);
  t.regex(e!.message, /at most 9/);
});
