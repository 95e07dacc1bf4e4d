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
const STAGES = ['apgd-ce', 'apgd-t', 'fab-t', 'square'] as const;
const stateFiles = () => readdirSync(runDir).filter((f) => f.endsWith('.autoattack-state.safetensors'));

test.before(() => {
  const r = cli('train', '--json', '--preset', 'mnist-natural-quick', '--epochs', '1', '--device', 'cpu', '--runs-dir', runs, '--name', 'natural', '--set', 'eval.steps=1', '--set', 'eval.maxSamples=64');
  if (r.status !== 0) throw new Error(r.stderr);
});

test.serial('the table shows each stage; Ctrl-C inside a stage saves the per-point state and the same command resumes to the uninterrupted result', async (t) => {
  // Uninterrupted, without a state file: the table with the accuracy after each stage.
  const whole = cli(...EVAL, '--no-resume', '--no-write');
  t.is(whole.status, 0, whole.stderr);
  t.deepEqual(stateFiles(), []);
  const line = (label: string) => {
    const m = new RegExp(`^${label}\\s+\\d+\\.\\d%\\s+(\\d+)/64`, 'm').exec(whole.stdout);
    if (!m) throw new Error(`no "${label}" line in:\n${whole.stdout}`);
    return Number(m[1]);
  };
  const expected = { aa: line('aa'), stages: STAGES.map((s) => line(`  after ${s}`)), clean: line('clean') };
  t.true(expected.aa < expected.clean, 'AutoAttack broke something');

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
  const aa = resumed.attacks[1]!;
  t.true(aa.resumed);
  t.is(aa.correct, expected.aa);
  t.deepEqual(aa.stages!.map((s) => s.name), [...STAGES]);
  t.deepEqual(aa.stages!.map((s) => s.correct), expected.stages);
  t.deepEqual(stateFiles(), [], 'the state is removed once complete');
  t.true(existsSync(path.join(runDir, 'eval-best.md')));
});

test.serial('a component asked for more targets than the other classes is refused, naming the field', async (t) => {
  const spec = { kind: 'apgdT', name: 'apgd-t12', norm: 'linf', epsilon: 0.1, steps: 10, restarts: 1, targets: 12 } as const;
  const e = await t.throwsAsync(evaluate({ runDir, attacks: [spec], n: 8, device: 'cpu', write: false }));
  t.regex(e!.message, /attacks\[0\]\.targets/);
  t.regex(e!.message, /at most 9/);
});
