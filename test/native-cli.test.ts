/** The CLI as a subprocess against the built native addon: `models`, `train --json`, `eval`. */
import test from 'ava';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { cli } from './helpers/cli.js';

test('models --json lists the models with the reference parameter counts for 10 and 100 classes', (t) => {
  const r = cli('models', '--json');
  t.is(r.status, 0, r.stderr);
  const models = JSON.parse(r.stdout) as { name: string; parameters: { '10': number; '100': number } }[];
  t.deepEqual(
    models.map((m) => [m.name, m.parameters['10'], m.parameters['100']]),
    [
      ['small_cnn', 312_202, 330_292],
      ['resnet18', 11_173_962, 11_220_132],
      ['preact_resnet18', 11_172_170, 11_218_340],
      ['wrn34_10', 46_160_474, 46_218_164],
      ['wrn34_5', 11_554_074, 11_582_964],
      ['wrn28_10', 36_479_194, 36_536_884],
    ],
  );
  const text = cli('models').stdout;
  t.regex(text, /^small_cnn\s+1x28x28\s+312,202\s+330,292 /m);
  t.regex(text, /^wrn34_10\s+3x32x32\s+46,160,474\s+46,218,164 /m);
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
  const e = cli('eval', path.join(runs, 'tiny'), '--checkpoint', 'last', '--json', '--attacks', 'run', '--set', 'eval.steps=1');
  t.is(e.status, 0, e.stderr);
  const result = JSON.parse(e.stdout) as { samples: number; attack: string };
  t.is(result.samples, 40);
  t.is(result.attack, 'pgd-1');
});

test('train without a TTY prints plain progress lines and the summary', (t) => {
  const runs = mkdtempSync(path.join(tmpdir(), 'st-cli-plain-'));
  const r = cli('train', '--runs-dir', runs, '--name', 'plain', '--epochs', '1', '--device', 'cpu',
    '--set', 'dataset.trainSize=128', '--set', 'dataset.testSize=40', '--set', 'eval.steps=2');
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /^start: st on small_cnn/m);
  t.regex(r.stdout, /^epoch 1 test \(40\): clean [\d.]+%, pgd-2 [\d.]+%/m);
  t.regex(r.stdout, /^checkpoint \(last\): /m);
  t.regex(r.stdout, /^best epoch \(1, by pgd-2 on 40 held-out test images\): clean/m);
  t.regex(r.stdout, new RegExp(`^run folder: ${path.join(runs, 'plain').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm'));
});

test('--version names the package, the clone commit, libtorch and Node', (t) => {
  for (const flag of ['--version', '-V']) {
    const r = cli(flag);
    t.is(r.status, 0, r.stderr);
    t.regex(r.stdout, /^st-native \d+\.\d+\.\d+ \((git [0-9a-f]{12}(-dirty)?, )?libtorch 2\.11\.0[^,]*, node v\d+\.\d+\.\d+\)\n$/);
  }
});

test('train says where its run folder is (and when the name was taken); resuming a finished run says it is complete', (t) => {
  const runs = mkdtempSync(path.join(tmpdir(), 'st-names-'));
  const args = ['train', '--preset', 'mnist-natural-quick', '--epochs', '1', '--device', 'cpu', '--runs-dir', runs, '--name', 'same', '--set', 'dataset.trainSize=200', '--set', 'dataset.testSize=20', '--set', 'eval.steps=1'];
  const first = cli(...args);
  t.is(first.status, 0, first.stderr);
  t.regex(first.stderr, new RegExp(`^run folder: ${path.join(runs, 'same')}$`, 'm'));
  const second = cli(...args, '--json');
  t.is(second.status, 0, second.stderr);
  t.regex(second.stderr, new RegExp(`^run folder: ${path.join(runs, 'same-2')} \\("same" was taken\\)$`, 'm'));
  const again = cli('train', '--resume', path.join(runs, 'same'));
  t.is(again.status, 0, again.stderr);
  t.regex(again.stderr, /same is already complete: 1 epoch of 1 trained; nothing to resume/);
});
