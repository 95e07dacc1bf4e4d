/** The CLI as a subprocess, for everything that needs no native addon. */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { cli, root } from './helpers/cli.js';

const neverCreated = path.join(root, 'never-created');

test('--help lists the commands, and every command has its own help', (t) => {
  const r = cli('--help');
  t.is(r.status, 0);
  t.regex(r.stdout, /Commands:\n\s+train/);
  const expected: Record<string, RegExp> = {
    train: /--set <key\.path=value>[\s\S]*Examples:[\s\S]*Exit codes: 0 done, 1 failed, 2 invalid config or usage/,
    eval: /Usage: st-native eval <runDir\|file> \[options\][\s\S]*--checkpoint <which>[\s\S]*Examples:/,
    models: /Usage: st-native models \[options\][\s\S]*parameter\s+counts\s+for 10 and 100 classes/,
    presets: /Usage: st-native presets \[options\] \[command\][\s\S]*show \[options\] <name>/,
    setup: /Usage: st-native setup \[options\][\s\S]*--cpu/,
    doctor: /Usage: st-native doctor \[options\]/,
    data: /Usage: st-native data \[options\] \[command\]/,
    completion: /Usage: st-native completion \[options\] \[shell\]/,
  };
  for (const [command, pattern] of Object.entries(expected)) {
    const h = cli(command, '--help');
    t.is(h.status, 0, command);
    t.regex(h.stdout, pattern, command);
    t.is(h.stderr, '', command);
  }
});

test('no command prints the usage and exits 2', (t) => {
  const r = cli();
  t.is(r.status, 2);
  t.regex(r.stderr, /Usage: st-native <command>/);
  t.is(r.stdout, '');
});

test('presets --json is machine-readable, and the plain list names the default', (t) => {
  const r = cli('presets', '--json');
  t.is(r.status, 0);
  const presets = JSON.parse(r.stdout) as { name: string; description: string; overrides: unknown }[];
  t.true(presets.some((p) => p.name === 'mnist-st-quick'));
  t.true(presets.every((p) => typeof p.description === 'string' && typeof p.overrides === 'object'));
  t.regex(cli('presets').stdout, /^mnist-st-quick\s+ST /m);
});

test('a bad --set exits 2 before any work and names the field', (t) => {
  const r = cli('train', '--set', 'method.beta=six', '--runs-dir', neverCreated);
  t.is(r.status, 2);
  t.regex(r.stderr, /method\.beta: expected a number, got "six"/);
  t.is(r.stdout, '');
  t.false(existsSync(neverCreated));
});

test('every config error is reported at once, each with its field', (t) => {
  const r = cli('train', '--epochs', '0', '--device', 'gpu', '--set', 'optimizer.learningrate=0.1', '--runs-dir', neverCreated);
  t.is(r.status, 2);
  t.regex(r.stderr, /^invalid config:$/m);
  t.regex(r.stderr, /^ {2}epochs: expected a number >= 1, got 0$/m);
  t.regex(r.stderr, /^ {2}device: expected one of "auto", "cpu", "cuda", got "gpu"$/m);
  t.regex(r.stderr, /^ {2}optimizer\.learningrate: unknown field$/m);
});

test('a malformed --set, an unknown preset and an unreadable --config exit 2', (t) => {
  const set = cli('train', '--set', 'epochs');
  t.is(set.status, 2);
  t.regex(set.stderr, /--set: expected key\.path=value, got "epochs"/);
  const preset = cli('train', '--preset', 'mnist-fast');
  t.is(preset.status, 2);
  t.regex(preset.stderr, /preset: unknown preset "mnist-fast"; `st-native presets` lists all \d+/);
  const config = cli('train', '--config', path.join(root, 'no-such-config.json'));
  t.is(config.status, 2);
  t.regex(config.stderr, /--config .*no-such-config\.json: cannot read a JSON object/);
});

test('a dataset that is not downloaded, offline, fails naming the file, its URL and the folder, before any work', (t) => {
  const empty = mkdtempSync(path.join(tmpdir(), 'st-cli-nodata-'));
  const r = spawnSync(process.execPath, [path.join(root, 'bin', 'st-native.js'), 'train', '--preset', 'cifar10-resnet18-st', '--data-dir', empty, '--runs-dir', neverCreated], {
    encoding: 'utf8',
    env: { ...process.env, CI: 'true', ST_NATIVE_OFFLINE: '1' },
  });
  t.is(r.status, 1, r.stderr);
  t.regex(r.stderr, /^dataset error: cifar10: not/m);
  t.regex(r.stderr, /https:\/\/www\.cs\.toronto\.edu\/~kriz\/cifar-10-binary\.tar\.gz/);
  t.regex(r.stderr, new RegExp(empty.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
  t.false(existsSync(neverCreated));
});

test('unknown options and commands are usage errors', (t) => {
  const option = cli('train', '--epoch', '3');
  t.is(option.status, 2);
  t.regex(option.stderr, /unknown option '--epoch'[\s\S]*\(see --help\)/);
  t.is(cli('fly').status, 2);
  t.is(cli('train', 'extra').status, 2);
  t.is(cli('eval').status, 2);
  t.is(cli('eval', root, '--checkpoint', 'worst').status, 2);
});

test('misspelt commands, options, presets and fields get a "did you mean"', (t) => {
  const cases: [string[], RegExp][] = [
    [['trian'], /unknown command 'trian'\n\(Did you mean train\?\)/],
    [['data', 'fecth'], /unknown command 'fecth'\n\(Did you mean fetch\?\)/],
    [['train', '--epoch', '1'], /unknown option '--epoch'\n\(Did you mean --epochs\?\)/],
    [['eval', root, '--attack', 'pgd20'], /unknown option '--attack'\n\(Did you mean --attacks\?\)/],
    [['eval', root, '--checkpoint', 'bets'], /argument 'bets' is invalid\. Allowed choices are best, last, interrupted, ema-best, ema-last/],
    [['train', '--preset', 'mnist-st-quik'], /unknown preset "mnist-st-quik" \(did you mean "mnist-st-quick"\?\); `st-native presets` lists all \d+/],
    [['train', '--set', 'lr=0'], /lr: unknown field \(did you mean "optimizer\.lr"\?\)/],
    [['train', '--set', 'method.betta=6'], /method\.betta: unknown field \(did you mean "beta"\?\)/],
  ];
  for (const [args, message] of cases) {
    const r = cli(...args);
    t.is(r.status, 2, args.join(' '));
    t.regex(r.stderr, message, args.join(' '));
    t.true(r.stderr.length < 600, `short: ${r.stderr}`);
  }
});

test('eval of a folder that is not a run says so', (t) => {
  const r = cli('eval', root);
  t.is(r.status, 2);
  t.regex(r.stderr, /is not a run folder of st-native: it has no config\.json; give a run folder or a checkpoint file/);
});
