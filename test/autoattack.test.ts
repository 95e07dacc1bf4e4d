/**
 * `st-native eval --attacks aa` on the real CLI: the stage lines, the
 * per-stage breakdown in the table and the JSON, and resuming: Ctrl-C in the
 * middle of a stage leaves the per-point state beside the output, the same
 * command continues from it (`resumed`), and the result equals an
 * uninterrupted run's. A naturally trained SmallCNN (one epoch on the digits)
 * at eps 0.2 keeps it fast: APGD-CE breaks most points (about 7 of 8 on this
 * model in the agreement test), so the costly later stages see few, yet each
 * stage still has points to attack and the Ctrl-C lands inside stage 2. At
 * eps 0.15 about half reached them and the file took 4 minutes in CI.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { evaluate, type Evaluation } from 'st-native';
import { CRASH_SIGNS, spawnCli } from './helpers/child-run.js';
import { cli } from './helpers/cli.js';

const runs = mkdtempSync(path.join(tmpdir(), 'st-aa-'));
const runDir = path.join(runs, 'natural');
const EVAL = ['eval', runDir, '--attacks', 'clean,aa', '--n', '64', '--batch', '16', '--eps', '0.2', '--device', 'cpu'];
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
    const m = new RegExp(`^${label}\\s+[\\d.]+%\\s+\\([\\d.]+–[\\d.]+%\\)\\s+(\\d+)/64`, 'm').exec(whole.stdout);
    if (!m) throw new Error(`no "${label}" line in:\n${whole.stdout}`);
    return Number(m[1]);
  };
  const expected = { aa: line('aa'), stages: STAGES.map((s) => line(`  after ${s}`)), clean: line('clean') };
  t.true(expected.aa < expected.clean, 'AutoAttack broke something');

  // Plain output: stage lines. Ctrl-C once the second stage has begun.
  const child = spawnCli(EVAL);
  await child.waitForLine((l) => l.startsWith('aa: stage 2/4 apgd-t'), 120_000, 'stderr');
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
  t.regex(again.stderr, /aa: resuming from stage 2\/4 \(apgd-t\) at point \d+ of \d+, from .*eval-best\.aa\.autoattack-state\.safetensors/);
  t.is(aa.correct, expected.aa);
  t.deepEqual(aa.stages!.map((s) => s.name), [...STAGES]);
  t.deepEqual(aa.stages!.map((s) => s.correct), expected.stages);
  t.deepEqual(stateFiles(), [], 'the state is removed once complete');
  t.true(existsSync(path.join(runDir, 'eval-best.md')));
});

test.serial('one evaluation per state file; an edited state is refused and kept; stale temp files of killed writers are swept', async (t) => {
  // A stops in stage 2 (its state saved after APGD-CE); B, started while A
  // runs, is refused naming A's pid instead of reading A's state.
  const first = spawnCli(EVAL);
  await first.waitForLine((l) => l.startsWith('aa: stage 2/4 apgd-t'), 120_000, 'stderr');
  const second = cli(...EVAL);
  t.is(second.status, 1, second.stderr);
  t.regex(second.stderr, /ERR_LOCKED/);
  t.regex(second.stderr, new RegExp(`another process \\(pid ${first.proc.pid} on [^)]+\\) is running the AutoAttack \`aa\``));
  first.proc.kill('SIGINT');
  t.is((await first.exited).code, 130, first.stderr());
  t.deepEqual(stateFiles(), ['eval-best.aa.autoattack-state.safetensors']);
  const stateFile = path.join(runDir, stateFiles()[0]!);
  const original = readFileSync(stateFile);

  // The progress record edited in place (stage 1 -> 3: FAB-T skipped):
  // refused as corrupt, the state left for the user, no result written.
  const text = original.toString('latin1');
  const at = text.indexOf('\\"stage\\":1');
  t.true(at > 0, 'the progress record names stage 1');
  const edited = Buffer.from(original);
  edited[at + '\\"stage\\":'.length] = '3'.charCodeAt(0);
  writeFileSync(stateFile, edited);
  rmSync(path.join(runDir, 'eval-best.json'), { force: true });
  const refused = cli(...EVAL);
  t.is(refused.status, 1, refused.stderr);
  t.regex(refused.stderr, /ERR_CHECKPOINT.*eval-best\.aa\.autoattack-state\.safetensors: corrupt: the header's checksum/s);
  t.true(existsSync(stateFile), 'the state is not deleted');
  t.false(existsSync(path.join(runDir, 'eval-best.json')));

  // Restored, beside a temp file of a writer killed mid-write (a dead pid)
  // and one of a live writer (this process): the dead one is swept, the
  // live one kept, and the evaluation resumes.
  writeFileSync(stateFile, original);
  const dead = spawnSync(process.execPath, ['-e', '']).pid!;
  const host = hostname().replace(/[^A-Za-z0-9._-]/g, '_');
  const stale = path.join(runDir, `.eval-best.aa.autoattack-state.safetensors.tmp-${host}-${dead}`);
  const live = path.join(runDir, `.eval-best.aa.autoattack-state.safetensors.tmp-${host}-${process.pid}`);
  writeFileSync(stale, 'x'.repeat(1000));
  writeFileSync(live, 'x');
  // Accepted: it goes on in stage 2 (the first test checks where a resume ends).
  const resumed = spawnCli(EVAL);
  await resumed.waitForLine((l) => l.startsWith('aa: stage 2/4 apgd-t'), 120_000, 'stderr');
  resumed.proc.kill('SIGINT');
  t.is((await resumed.exited).code, 130, resumed.stderr());
  t.notRegex(resumed.stderr(), /corrupt|ERR_/);
  t.false(existsSync(stale), 'a dead writer\'s temp file is removed');
  t.true(existsSync(live), 'a live writer\'s temp file stays');
  for (const f of readdirSync(runDir).filter((name) => name.includes('autoattack-state'))) rmSync(path.join(runDir, f));
});

test.serial('a component asked for more targets than the other classes is refused, naming the field', async (t) => {
  const spec = { kind: 'apgdT', name: 'apgd-t12', norm: 'linf', epsilon: 0.1, steps: 10, restarts: 1, targets: 12 } as const;
  const e = await t.throwsAsync(evaluate({ runDir, attacks: [spec], n: 8, device: 'cpu', write: false }));
  t.regex(e!.message, /attacks\[0\]\.targets/);
  t.regex(e!.message, /at most 9/);
});
