import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const cli = (...args: string[]) =>
  spawnSync(process.execPath, [path.join(root, 'bin', 'st-native.js'), ...args], { encoding: 'utf8', env: { ...process.env, CI: 'true' } });

test('--help lists the commands', (t) => {
  const r = cli('--help');
  t.is(r.status, 0);
  t.regex(r.stdout, /Commands:\n\s+train/);
  t.regex(cli('train', '--help').stdout, /--set KEY\.PATH=VALUE/);
});

test('presets --json is machine-readable', (t) => {
  const r = cli('presets', '--json');
  t.is(r.status, 0);
  const presets = JSON.parse(r.stdout) as { name: string }[];
  t.true(presets.some((p) => p.name === 'mnist-st-quick'));
});

test('models --json lists the models with the reference parameter counts', (t) => {
  const r = cli('models', '--json');
  t.is(r.status, 0, r.stderr);
  const models = JSON.parse(r.stdout) as { name: string; parameters: number }[];
  t.deepEqual(
    models.map((m) => [m.name, m.parameters]),
    [
      ['small_cnn', 312_202],
      ['resnet18', 11_173_962],
    ],
  );
});

test('a bad --set exits 2 before any work and names the field', (t) => {
  const r = cli('train', '--set', 'method.beta=six', '--runs-dir', path.join(root, 'never-created'));
  t.is(r.status, 2);
  t.regex(r.stderr, /method\.beta: expected number, got "six"/);
  t.is(r.stdout, '');
});

test('unknown options and commands are usage errors', (t) => {
  t.is(cli('train', '--epoch', '3').status, 2);
  t.is(cli('fly').status, 2);
});

test('eval of a folder that is not a run says so', (t) => {
  const r = cli('eval', root);
  t.is(r.status, 2);
  t.regex(r.stderr, /config\.json: not found: is this a run folder\?/);
});

test('train --json prints only JSON events, and eval reads the run back', (t) => {
  const runs = mkdtempSync(path.join(tmpdir(), 'st-cli-runs-'));
  const r = cli('train', '--json', '--runs-dir', runs, '--name', 'tiny', '--epochs', '1', '--device', 'cpu',
    '--set', 'dataset.trainSize=128', '--set', 'dataset.testSize=40', '--set', 'eval.steps=2');
  t.is(r.status, 0, r.stderr);
  const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { type: string; status?: string });
  t.is(events[0]!.type, 'start');
  t.is(events.at(-1)!.type, 'done');
  t.is(events.at(-1)!.status, 'completed');
  const e = cli('eval', path.join(runs, 'tiny'), '--checkpoint', 'last', '--json', '--set', 'eval.steps=1');
  t.is(e.status, 0, e.stderr);
  const result = JSON.parse(e.stdout) as { samples: number; attack: string };
  t.is(result.samples, 40);
  t.is(result.attack, 'pgd-1');
});
