/**
 * What a new user reads when `eval` or `train --resume` is pointed at the
 * wrong thing: a folder that is no run folder says so (exit 2, code
 * ERR_NOT_A_RUN_FOLDER), option mistakes read "invalid options:", and a
 * checkpoint file whose class count or shape fits no dataset (or several)
 * says which datasets there are. No training: a one-tensor PyTorch-style
 * file is enough, the messages come before the model is built.
 */
import test from 'ava';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConfigError, evaluate, NotARunFolderError, resolveConfig } from '../ts/index.js';
import { report } from '../ts/cli/errors.js';
import { cli } from './helpers/cli.js';
import { writeSafetensors } from './helpers/safetensors.js';

const work = mkdtempSync(path.join(tmpdir(), 'st-eval-msg-'));
const empty = path.join(work, 'not-a-run');
mkdirSync(empty);
const stateDict = path.join(work, 'state-dict.safetensors');
writeSafetensors(stateDict, { metadata: undefined, tensors: new Map([['w', { dtype: 'F32', shape: [1], data: Buffer.alloc(4) }]]) });

test('a folder that is no run folder: eval and train --resume say so, exit 2, not "invalid config"', (t) => {
  for (const args of [['eval', empty], ['train', '--resume', empty], ['train', '--resume', path.join(work, 'missing')]]) {
    const r = cli(...args);
    t.is(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    t.regex(r.stderr, /is not a run folder of st-native: /, args.join(' '));
    t.notRegex(r.stderr, /invalid config/, args.join(' '));
  }
  // eval's positional may be a file as well: a path that is neither is named as such.
  t.regex(cli('eval', path.join(work, 'missing')).stderr, /missing: no such run folder or checkpoint file/);
  t.regex(cli('train', '--resume', empty).stderr, /not-a-run is not a run folder of st-native: it has no config\.json/);
  // Another tool's config.json is not a run either.
  const other = path.join(work, 'other-tool');
  mkdirSync(other);
  writeFileSync(path.join(other, 'config.json'), JSON.stringify({ lr: 0.1 }));
  const r = cli('eval', other);
  t.is(r.status, 2, r.stderr);
  t.regex(r.stderr, /other-tool is not a run folder of st-native: its config\.json has no "config" object/);
});

test('the API rejects with NotARunFolderError (code ERR_NOT_A_RUN_FOLDER), with or without attacks', async (t) => {
  for (const options of [{ runDir: empty }, { runDir: empty, attacks: ['clean' as const] }]) {
    const e = await t.throwsAsync(evaluate(options), { instanceOf: NotARunFolderError });
    t.is(e!.code, 'ERR_NOT_A_RUN_FOLDER');
    t.is(e!.folder, empty);
    t.is(report(e, () => undefined), 2);
  }
});

test('option mistakes read "invalid options:", and remain ConfigErrors for API callers', async (t) => {
  const cases: [string[], RegExp][] = [
    [['eval', stateDict, '--attacks', 'clean'], /^invalid options:\n {2}model: .*does not say which model it holds/],
    [['eval', stateDict, '--model', 'small_cnn', '--attacks', 'bim'], /^invalid options:\n {2}attacks\[0\]: unknown attack "bim"/],
    [['eval', stateDict, '--eps', 'lots'], /^invalid options:\n {2}--eps: expected a number \(e\.g\. 0\.031 or 8\/255\), got "lots"$/m],
    [['eval', stateDict, '--checkpoint', 'last'], /^invalid options:\n {2}--checkpoint picks a checkpoint of a run folder/],
    [['eval', stateDict, '--model', 'small_cnn', '--classes', '10', '--attacks', 'clean,pgd-20,pgd20'], /^invalid options:\n {2}attacks\[2\]: "pgd20" is listed twice \(as "pgd-20" before it\)/],
  ];
  for (const [args, message] of cases) {
    const r = cli(...args);
    t.is(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    t.regex(r.stderr, message, args.join(' '));
  }
  const e = await t.throwsAsync(evaluate({ file: stateDict, attacks: ['clean'] }), { instanceOf: ConfigError });
  t.is(e!.code, 'ERR_INVALID_CONFIG');
  t.is(e!.name, 'OptionsError');
});

test('dataset inference for a checkpoint file: no dataset with that class count, or several that fit', (t) => {
  const none = cli('eval', stateDict, '--model', 'small_cnn', '--classes', '100', '--attacks', 'clean');
  t.is(none.status, 2, none.stderr);
  t.regex(none.stderr, /^invalid options:\n {2}dataset: no dataset of small_cnn's input shape 1x28x28 has 100 classes \(mnist-embedded has 10\); give the dataset, or a class count that fits one$/m);
  const seven = cli('eval', stateDict, '--model', 'resnet18', '--classes', '7', '--attacks', 'clean');
  t.is(seven.status, 2, seven.stderr);
  t.regex(seven.stderr, /dataset: no dataset of resnet18's input shape 3x32x32 has 7 classes \(cifar10 has 10, cifar100 has 100, svhn has 10\)/);
  const two = cli('eval', stateDict, '--model', 'resnet18', '--classes', '10', '--attacks', 'clean');
  t.is(two.status, 2, two.stderr);
  t.regex(two.stderr, /dataset: cifar10 and svhn both fit a resnet18 with 10 classes; name the dataset/);
});

test('a run without the asked checkpoint says which it has: a cancelled run points at --checkpoint interrupted', async (t) => {
  const run = path.join(work, 'cancelled-run');
  mkdirSync(path.join(run, 'checkpoints'), { recursive: true });
  writeFileSync(path.join(run, 'config.json'), JSON.stringify({ config: resolveConfig({}) }));
  writeFileSync(path.join(run, 'checkpoints', 'interrupted.safetensors'), '');
  const r = cli('eval', run, '--attacks', 'clean');
  t.is(r.status, 2, r.stderr);
  t.regex(r.stderr, /cancelled-run has no best checkpoint \(checkpoints\/best\.safetensors\); it has interrupted: evaluate that with --checkpoint interrupted/);
  await t.throwsAsync(evaluate({ runDir: run, checkpoint: 'last' }), { instanceOf: ConfigError, message: /no last checkpoint.*checkpoint: 'interrupted'/ });
  const bare = path.join(work, 'no-checkpoints');
  mkdirSync(bare);
  writeFileSync(path.join(bare, 'config.json'), JSON.stringify({ config: resolveConfig({}) }));
  t.regex(cli('eval', bare).stderr, /no best checkpoint .*it has no checkpoint at all/);
});
