/**
 * A 2 × 2 sweep on tiny digits, stopped midway by its AbortSignal and
 * continued: the finished cells' files stay as they were (mtime), only the
 * rest is trained.
 */
import test from 'ava';
import { existsSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConfigError } from '../ts/config/errors.js';
import { gridCells, parseAxis, sweep, type SweepEvent } from '../ts/experiment/sweep.js';
import { cli } from './helpers/cli.js';
import { filesUnder } from './helpers/child-run.js';
import { tiny } from './helpers/tiny.js';

const runsDir = mkdtempSync(path.join(tmpdir(), 'st-sweep-'));
const set = ['method.beta=1,2', 'method.reg=js,l2'];
const mtimes = (dir: string) => Object.fromEntries(filesUnder(dir).map((f) => [f, statSync(f).mtimeMs]));

test('axes read values as --set does, and cells get readable folder names', (t) => {
  t.deepEqual(parseAxis('method.beta=1,2.5,4'), { key: 'method.beta', values: [1, 2.5, 4] });
  t.deepEqual(parseAxis('method.reg=js,l2'), { key: 'method.reg', values: ['js', 'l2'] });
  t.deepEqual(parseAxis('optimizer.milestones=[1,2],[3]'), { key: 'optimizer.milestones', values: [[1, 2], [3]] });
  t.deepEqual(
    gridCells([parseAxis(set[0]!), parseAxis(set[1]!)]).map((c) => c.id),
    ['beta-1_reg-js', 'beta-1_reg-l2', 'beta-2_reg-js', 'beta-2_reg-l2'],
  );
  t.throws(() => parseAxis('method.beta'), { instanceOf: ConfigError, message: /expected key\.path=value1,value2/ });
  t.throws(() => gridCells([parseAxis('method.beta=1,1')]), { message: /share a folder name/ });
});

test.serial('a bad cell fails before anything runs, naming the cell', async (t) => {
  await t.throwsAsync(sweep({ overrides: tiny(runsDir), set: ['method.beta=1,-1'], name: 'bad' }), {
    instanceOf: ConfigError,
    message: /cell beta--1: method\.beta: expected a number >= 0/,
  });
  t.false(existsSync(path.join(runsDir, 'bad')));
});

test.serial('stopped midway and continued: finished cells untouched, only the rest trained', async (t) => {
  const controller = new AbortController();
  const first: SweepEvent[] = [];
  const stopped = await sweep({
    overrides: tiny(runsDir),
    set,
    name: 'grid',
    signal: controller.signal,
    onEvent: (e) => {
      first.push(e);
      // Abort inside the third cell's training, as Ctrl-C would.
      if (e.type === 'seeds' && e.cell === 'beta-2_reg-js' && e.event.type === 'train' && e.event.event.type === 'step') controller.abort();
    },
  });
  t.is(stopped.status, 'cancelled');
  t.deepEqual(stopped.cells.map((c) => c.status), ['completed', 'completed', 'cancelled', 'pending']);
  const dir = stopped.dir;
  t.true(existsSync(path.join(dir, 'grid.json')));
  t.regex(readFileSync(path.join(dir, 'results.md'), 'utf8'), /stopped before the end/);
  const finished = [path.join(dir, 'cells', 'beta-1_reg-js'), path.join(dir, 'cells', 'beta-1_reg-l2')];
  const before = Object.assign({}, ...finished.map(mtimes)) as Record<string, number>;
  t.true(Object.keys(before).length > 10);

  const second: SweepEvent[] = [];
  const done = await sweep({ dir, resume: true, onEvent: (e) => void second.push(e) });
  t.is(done.status, 'completed');
  const cellEvents = second.filter((e) => e.type !== 'seeds').map((e) => `${e.type} ${e.cell}`);
  t.deepEqual(cellEvents, ['cell-skipped beta-1_reg-js', 'cell-skipped beta-1_reg-l2', 'cell-start beta-2_reg-js', 'cell-done beta-2_reg-js', 'cell-start beta-2_reg-l2', 'cell-done beta-2_reg-l2']);
  const trained = second.flatMap((e) => (e.type === 'seeds' && e.event.type === 'seed-start' ? [e.cell] : []));
  t.deepEqual(trained, ['beta-2_reg-js', 'beta-2_reg-l2']);
  t.deepEqual(Object.assign({}, ...finished.map(mtimes)), before);
  t.deepEqual(done.cells.map((c) => c.reused), [true, true, false, false]);
  // The interrupted run was trained again in its own folder.
  t.false(existsSync(path.join(dir, 'cells', 'beta-2_reg-js', 'seed-0-2')));

  const results = JSON.parse(readFileSync(done.files.json, 'utf8')) as { status: string; cells: { id: string; metrics: { key: string; n: number }[] }[] };
  t.is(results.status, 'completed');
  t.true(results.cells.every((c) => c.metrics.find((m) => m.key === 'clean')?.n === 1));
  const csv = readFileSync(done.files.csv, 'utf8').trim().split('\n');
  t.is(csv.length, 5);
  t.regex(csv[0]!, /^cell,method\.beta,method\.reg,status,n,clean_mean,clean_sd,clean_ci95,/);

  // The same name with another grid is refused; --resume from the CLI has nothing left to do.
  await t.throwsAsync(sweep({ overrides: tiny(runsDir), set: ['method.beta=1,3'], name: 'grid' }), { instanceOf: ConfigError, message: /another grid/ });
  const r = cli('sweep', '--resume', dir);
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /^method\.beta\s+method\.reg\s+clean/m);
  t.is(r.stdout.match(/completed$/gm)?.length, 4);
  t.deepEqual(Object.assign({}, ...finished.map(mtimes)), before);
  const mixed = cli('sweep', '--resume', dir, '--set', 'method.beta=1,2');
  t.is(mixed.status, 2);
  t.regex(mixed.stderr, /--set: a resumed sweep runs its own grid\.json/);
});
