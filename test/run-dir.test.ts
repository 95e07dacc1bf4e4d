/** Run folders: exclusive creation, names that cannot escape, stale temp files swept. */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { tempHost, writeFileAtomic } from '../ts/experiment/files.js';
import { createRunDir, sweepRunsFolder } from '../ts/experiment/run-dir.js';

test('a name already taken gets a suffix; the folder itself is never shared', (t) => {
  const runs = mkdtempSync(path.join(tmpdir(), 'st-rundir-'));
  const a = createRunDir(runs, 'same', 'st');
  const b = createRunDir(runs, 'same', 'st');
  t.is(path.basename(a.path), 'same');
  t.is(path.basename(b.path), 'same-2');
  t.true(existsSync(b.checkpoints));
});

test('two processes racing for one name get two folders', (t) => {
  const runs = mkdtempSync(path.join(tmpdir(), 'st-rundir-race-'));
  const module = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', 'ts', 'experiment', 'run-dir.js');
  const script = `import { createRunDir } from ${JSON.stringify(module)}; const start = Number(process.argv[1]); while (Date.now() < start) {} console.log(createRunDir(${JSON.stringify(runs)}, 'race', 'st').path);`;
  const start = String(Date.now() + 700);
  const children = [0, 1, 2, 3].map(() => spawnSync(process.execPath, ['--input-type=module', '-e', script, start], { encoding: 'utf8' }));
  const made = children.map((c) => c.stdout.trim());
  t.is(new Set(made).size, 4, made.join(', '));
  t.is(readdirSync(runs).length, 4);
});

test('names that would escape the runs folder are refused', (t) => {
  const runs = mkdtempSync(path.join(tmpdir(), 'st-rundir-escape-'));
  for (const bad of ['.', '..', 'a/b']) t.throws(() => createRunDir(runs, bad, 'st'), { message: /escape/ }, bad);
});

test('the sweep removes temp files of dead writers on this host only', (t) => {
  const runs = mkdtempSync(path.join(tmpdir(), 'st-rundir-sweep-'));
  const ckpt = path.join(runs, 'r1', 'checkpoints');
  mkdirSync(ckpt, { recursive: true });
  const dead = spawnSync('true').pid!;
  const host = tempHost();
  const stale = path.join(ckpt, `.last.safetensors.tmp-${host}-${dead}`);
  const mine = path.join(ckpt, `.best.safetensors.tmp-${host}-${process.pid}`);
  const foreign = path.join(ckpt, `.last.safetensors.tmp-elsewhere-${dead}`);
  const topLevel = path.join(runs, 'r1', `.summary.json.tmp-${host}-${dead}`);
  for (const f of [stale, mine, foreign, topLevel]) writeFileSync(f, 'x');
  const removed = sweepRunsFolder(runs).sort();
  t.deepEqual(removed, [stale, topLevel].sort());
  t.true(existsSync(mine) && existsSync(foreign));
});

test('an atomic write that fails leaves no temp file', (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'st-atomic-'));
  const target = path.join(dir, 'sub');
  mkdirSync(target); // a folder where the file should go: rename fails
  t.throws(() => writeFileAtomic(target, 'data'));
  t.deepEqual(readdirSync(dir), ['sub']);
});
