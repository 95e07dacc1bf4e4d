/**
 * The workbench's runs in parallel and resumed, on tiny digits (128 images,
 * one thread per run): a sweep trained two runs at a time, each in its own
 * process, gives the sequential sweep's numbers bit for bit and writes its
 * report; a cell whose process is SIGKILLed fails alone and is trained by
 * the next call; a seed stopped midway continues from its last completed
 * epoch and ends as the uninterrupted run did.
 */
import test from 'ava';
import { existsSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { readSafetensors } from './helpers/safetensors.js';
import { compareRuns } from '../ts/experiment/runs.js';
import { trainSeeds, type SeedsEvent, type SeedsResult } from '../ts/experiment/seeds.js';
import { sweep, type SweepResult } from '../ts/experiment/sweep.js';
import { spawnSync } from 'node:child_process';
import { cli, root } from './helpers/cli.js';
import { tiny, tinyArgs } from './helpers/tiny.js';

const runsDir = mkdtempSync(path.join(tmpdir(), 'st-parallel-'));
const set = ['method.beta=1,2'];

/** Every metric of every cell but the training time, bit for bit. */
const numbers = (r: SweepResult) => r.cells.map((c) => [c.id, c.status, c.metrics.filter((m) => m.key !== 'seconds').map((m) => [m.key, m.values])]);

/** A checkpoint's tensors, for bit-exact comparison. */
function tensorsOf(file: string): Record<string, string> {
  return Object.fromEntries([...readSafetensors(file).tensors].map(([name, t]) => [name, t.data.toString('base64')]));
}

test.serial('two runs at a time, each in its own process: the sequential sweep\'s numbers, bit for bit, and the report with the per-cell trade-off', async (t) => {
  const sequential = await sweep({ overrides: tiny(runsDir), set, name: 'sequential', report: false });
  t.is(sequential.status, 'completed');
  t.false(existsSync(path.join(sequential.dir, 'report.html')));
  const pids: number[] = [];
  const parallel = await sweep({ overrides: tiny(runsDir), set, name: 'parallel', parallel: 2, onChildPid: (pid) => void pids.push(pid) });
  t.is(parallel.status, 'completed');
  t.is(pids.length, 2);
  t.deepEqual(numbers(parallel), numbers(sequential));
  // Accuracies on 32 images are coarse: the weights themselves, bit for bit.
  for (const [i, c] of parallel.cells.entries()) {
    const ckpt = (dir: string) => tensorsOf(path.join(dir, 'seed-0', 'checkpoints', 'last.safetensors'));
    t.deepEqual(ckpt(c.dir), ckpt(sequential.cells[i]!.dir), c.id);
  }
  t.notDeepEqual(tensorsOf(path.join(parallel.cells[0]!.dir, 'seed-0', 'checkpoints', 'last.safetensors')), tensorsOf(path.join(parallel.cells[1]!.dir, 'seed-0', 'checkpoints', 'last.safetensors')));
  t.deepEqual(parallel.failed, []);
  // The report: written at the end, with the cells' trade-off and interval bars.
  t.is(parallel.report?.file, path.join(parallel.dir, 'report.html'));
  const html = readFileSync(path.join(parallel.dir, 'report.html'), 'utf8');
  t.regex(html, /Clean vs robust accuracy per cell/);
  t.regex(html, /Mean accuracy per cell/);
  t.regex(html, /beta-2/);
  for (const c of parallel.cells) t.true(existsSync(path.join(c.dir, 'report.html')), c.id);

  // runs compare on a sweep: one line per cell, mean ± 95% CI, not each run.
  const cmp = compareRuns([parallel.dir]);
  t.deepEqual(cmp.groups?.map((g) => [g.name, g.n, g.kind]), [['parallel/beta-1', 1, 'cell'], ['parallel/beta-2', 1, 'cell']]);
  const clean = parallel.cells[0]!.metrics.find((m) => m.key === 'clean')!;
  t.is(cmp.groups![0]!.metrics.find((m) => m.key === 'clean')!.mean, clean.mean);
  const r = cli('runs', 'compare', parallel.dir);
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /parallel\/beta-1/);
  t.notRegex(r.stdout, /seed-0/);
});

test.serial('a cell whose process is killed with SIGKILL fails alone; the next call trains only it', async (t) => {
  const killed = await sweep({
    overrides: tiny(runsDir),
    set,
    name: 'killed',
    parallel: 2,
    report: false,
    onChildPid: (pid, run) => {
      if (run.cell === 'beta-2') process.kill(pid, 'SIGKILL');
    },
  });
  t.is(killed.status, 'failed');
  t.deepEqual(killed.failed, ['beta-2']);
  t.deepEqual(killed.cells.map((c) => c.status), ['completed', 'failed']);
  t.regex(killed.cells[1]!.error!, /seed 0: isolated training process \(pid \d+\) was killed by SIGKILL/);
  const json = JSON.parse(readFileSync(killed.files.json, 'utf8')) as { status: string; failed: string[]; cells: { status: string; error?: string }[] };
  t.is(json.status, 'failed');
  t.regex(json.cells[1]!.error!, /SIGKILL/);
  t.regex(readFileSync(killed.files.markdown, 'utf8'), /cell beta-2 failed: seed 0: isolated training process/);

  const again = await sweep({ dir: killed.dir, resume: true, parallel: 2, report: false });
  t.is(again.status, 'completed');
  t.deepEqual(again.cells.map((c) => c.reused), [true, false]);
  const sequential = JSON.parse(readFileSync(path.join(runsDir, 'sequential', 'results.json'), 'utf8')) as { cells: { metrics: { key: string; values: number[] }[] }[] };
  const robust = (ms: readonly { key: string; values: number[] }[]) => ms.find((m) => m.key === 'robust')!.values;
  t.deepEqual(robust(again.cells[1]!.metrics), robust(sequential.cells[1]!.metrics));
});

test.serial('the CLI: a cell whose process dies is reported at the end, exit 1; the others finish', (t) => {
  // ST_NATIVE_TEST_KILL_CELL is a test-only hook of the sweep command.
  const r = spawnSync(process.execPath, [path.join(root, 'bin', 'st-native.js'), 'sweep', ...tinyArgs(runsDir), '--set', 'method.beta=1,2', '--parallel', '2', '--name', 'cli-killed', '--no-report'], {
    encoding: 'utf8',
    env: { ...process.env, CI: 'true', ST_NATIVE_TEST_KILL_CELL: 'beta-1' },
  });
  t.is(r.status, 1, r.stderr);
  t.regex(r.stdout, /^1\s.*failed$/m);
  t.regex(r.stdout, /^2\s.*completed$/m);
  t.regex(r.stderr, /cell beta-1 failed: seed 0: isolated training process \(pid \d+\) was killed by SIGKILL/);
  t.regex(r.stderr, /1 cell of 2 failed; st-native sweep --resume .*cli-killed trains what is missing$/m);
});

test.serial('the CLI: --parallel checked, and only with --seeds on train', async (t) => {
  const bad = cli('sweep', '--set', 'method.beta=1,2', '--parallel', '0');
  t.is(bad.status, 2);
  t.regex(bad.stderr, /--parallel: expected an integer from 1 to 64/);
  const seeds = cli('train', '--seeds', '2', '--parallel', 'two');
  t.is(seeds.status, 2);
  t.regex(seeds.stderr, /--parallel: expected an integer from 1 to 64/);
  await t.throwsAsync(trainSeeds({ seeds: 2, parallel: 0 }), { message: /options\.parallel: / });
  const alone = cli('train', '--parallel', '2');
  t.is(alone.status, 2);
  t.regex(alone.stderr, /--parallel: only with --seeds/);
});

test.serial('a seed stopped midway continues from its last completed epoch and ends as the uninterrupted run, bit for bit', async (t) => {
  const two = [...tiny(runsDir), { epochs: 2 }];
  const whole = await trainSeeds({ overrides: two, seeds: [0], name: 'whole', report: false });
  t.is(whole.status, 'completed');
  const controller = new AbortController();
  const stopped = await trainSeeds({
    overrides: two,
    seeds: [0],
    name: 'stopped',
    report: false,
    signal: controller.signal,
    // In the second epoch, after the first one's resume checkpoint.
    onEvent: (e) => {
      if (e.type === 'train' && e.event.type === 'step' && e.event.epoch === 2) controller.abort();
    },
  });
  t.is(stopped.status, 'cancelled');
  const events: SeedsEvent[] = [];
  const resumed: SeedsResult = await trainSeeds({ overrides: two, seeds: [0], name: 'stopped', onEvent: (e) => void events.push(e) });
  t.is(resumed.status, 'completed');
  t.deepEqual(events.filter((e) => e.type === 'seed-start').map((e) => e.type === 'seed-start' && e.resumed), [true]);
  // Only the second epoch was trained again.
  t.deepEqual([...new Set(events.flatMap((e) => (e.type === 'train' && e.event.type === 'step' ? [e.event.epoch] : [])))], [2]);
  const values = (r: SeedsResult) => r.metrics.filter((m) => m.key !== 'seconds').map((m) => [m.key, m.values]);
  t.deepEqual(values(resumed), values(whole));
  for (const kind of ['last', 'best']) {
    t.deepEqual(tensorsOf(path.join(resumed.dir, 'seed-0', 'checkpoints', `${kind}.safetensors`)), tensorsOf(path.join(whole.dir, 'seed-0', 'checkpoints', `${kind}.safetensors`)), kind);
  }
  // The group's report, written at the end.
  t.regex(readFileSync(path.join(resumed.dir, 'report.html'), 'utf8'), /Over 1 seed<|Mean accuracy over the seeds/);
});

test.serial('train writes the run\'s report.html at the end (a sweep not with --no-report), and eval refreshes it with the evaluation', (t) => {
  const r = cli('train', '--name', 'reported', ...tinyArgs(runsDir));
  t.is(r.status, 0, r.stderr);
  const dir = path.join(runsDir, 'reported');
  const file = path.join(dir, 'report.html');
  t.regex(r.stderr, new RegExp(`report: ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
  t.regex(readFileSync(file, 'utf8'), /None kept in this folder/);
  const before = statSync(file).mtimeMs;
  const e = cli('eval', dir, '--attacks', 'clean,fgsm', '--n', '16');
  t.is(e.status, 0, e.stderr);
  t.true(statSync(file).mtimeMs > before);
  t.regex(readFileSync(file, 'utf8'), /Evaluations \(1\)/);
  // --no-report: a sweep with nothing left to train writes none (it was made with report: false).
  const off = cli('sweep', '--resume', path.join(runsDir, 'killed'), '--no-report');
  t.is(off.status, 0, off.stderr);
  t.notRegex(off.stdout, /report:/);
  t.false(existsSync(path.join(runsDir, 'killed', 'report.html')));
});
