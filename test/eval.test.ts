/**
 * `st-native eval` and `evaluate({ attacks })`: the attack table of a run and
 * of a checkpoint file (ours, or a PyTorch state dict), the worst case, the
 * recorded settings, the files written, saved adversarial inputs, input
 * normalisation, the errors that name what is wrong, progress events and
 * cancellation.
 */
import test from 'ava';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import React from 'react';
import { render } from 'ink-testing-library';
import { evaluate, PAPER_ATTACKS, type EvalEvent, type Evaluation } from 'st-native';
import { EvalStore } from '../ts/cli/eval-state.js';
import { EvalView } from '../ts/cli/eval-view.js';
import { parseNormalize, parseNumber } from '../ts/cli/eval.js';
import { PlainEvalPrinter } from '../ts/cli/eval-progress.js';
import { wilson } from '../ts/experiment/evaluate.js';
import { cli } from './helpers/cli.js';
import { readSafetensors, writeSafetensors } from './helpers/safetensors.js';

const runs = mkdtempSync(path.join(tmpdir(), 'st-eval-'));
const runDir = path.join(runs, 'tiny');
const checkpoint = path.join(runDir, 'checkpoints', 'best.safetensors');

/** One quick natural run (1 epoch, 2,000 digits, 60 held out) for every test here. */
test.before(() => {
  const r = cli('train', '--json', '--preset', 'mnist-natural-quick', '--epochs', '1', '--device', 'cpu', '--runs-dir', runs, '--name', 'tiny',
    '--set', 'dataset.trainSize=2000', '--set', 'dataset.testSize=60', '--set', 'eval.steps=2');
  if (r.status !== 0) throw new Error(r.stderr);
});

function json(r: ReturnType<typeof cli>): Evaluation & Record<string, unknown> {
  if (r.status !== 0) throw new Error(`exit ${r.status}: ${r.stderr}`);
  return JSON.parse(r.stdout) as Evaluation & Record<string, unknown>;
}

/** A copy of our checkpoint as PyTorch's save_file writes it: the same tensors, no metadata. */
function asPytorchFile(name: string, edit?: (st: ReturnType<typeof readSafetensors>) => void): string {
  const st = readSafetensors(checkpoint);
  edit?.(st);
  const file = path.join(runs, name);
  writeSafetensors(file, { metadata: undefined, tensors: st.tensors });
  return file;
}

test.serial('eval of a run: the table with the run row, worst case, records, files and the old top-level fields', (t) => {
  const e = json(cli('eval', runDir, '--json'));
  t.deepEqual(e.attacks.map((a) => a.name), ['clean', 'run', 'fgsm', 'pgd20', 'pgd100', 'cw']);
  t.deepEqual(e.worstCase.over, ['clean', 'run', 'fgsm', 'pgd20', 'pgd100', 'cw']);
  for (const a of e.attacks) {
    t.true(e.worstCase.accuracy <= a.accuracy, a.name);
    t.is(a.samples, 60);
    t.true(a.maxPerturbation <= (a.spec.kind === 'clean' ? 0 : 0.2) + 1e-6, `${a.name}: ${a.maxPerturbation}`);
  }
  const byName = Object.fromEntries(e.attacks.map((a) => [a.name, a]));
  // The digits' radius is the run's (0.2, step 0.02); PGD-100 never beats PGD-20 from the same starts.
  t.like(byName.pgd20!.spec, { kind: 'pgd', norm: 'linf', epsilon: 0.2, stepSize: 0.02, steps: 20, restarts: 1, randomStart: true, keep: 'best' });
  t.like(byName.cw!.spec, { kind: 'cw', steps: 100 });
  t.true(byName.pgd100!.accuracy <= byName.pgd20!.accuracy);
  // Recorded: seed, images, checksum (the one the checkpoint carries), device, settings.
  t.is(e.seed, 0);
  t.is(e.samples, 60);
  t.is(e.checkpointCrc32, readSafetensors(checkpoint).metadata!['st_native.crc32']!);
  t.true(e.verified);
  t.is(e.dataset, 'mnist-embedded');
  // The run row reproduces the logged evaluation, and sits at the top level as before.
  const summary = JSON.parse(readFileSync(path.join(runDir, 'summary.json'), 'utf8')) as { best: { cleanAcc: number; robustAcc: number; attack: string } };
  t.like(e, { cleanAcc: summary.best.cleanAcc, robustAcc: summary.best.robustAcc, attack: summary.best.attack, epoch: 1 });
  t.is(byName.run!.accuracy, summary.best.robustAcc);
  // Written beside the run's checkpoints: the same JSON, and a Markdown table.
  const written = JSON.parse(readFileSync(path.join(runDir, 'eval-best.json'), 'utf8')) as Evaluation;
  t.deepEqual(written.attacks, e.attacks);
  const md = readFileSync(path.join(runDir, 'eval-best.md'), 'utf8');
  t.regex(md, /^\| attack \| accuracy \| 95% interval \| correct \| settings \|$/m);
  t.regex(md, /^\| pgd20 \| [\d.]+% \| [\d.]+–[\d.]+% \| \d+ \/ 60 \| PGD, L∞ eps 0\.2, step 0\.02, 20 steps, random start, strongest iterate \|$/m);
  t.regex(md, /^\| \*\*worst case\*\* \| \*\*[\d.]+%\*\* \| [\d.]+–[\d.]+% \|/m);
  t.regex(md, new RegExp(`crc32 ${e.checkpointCrc32}, verified, epoch 1`));
  // The run by its name, not an absolute path; where the result came from.
  t.regex(md, /^# Robustness of best checkpoint of run tiny$/m);
  t.regex(md, /^- made by st-native \d+\.\d+\.\d+ .*libtorch 2\.11\.0.*Node v\d+.*: `st-native eval .* --json`$/m);
  t.like(e.provenance, { node: process.version, host: hostname() });
  // st-native bounds OpenMP spinning unless the environment chose (the test runner may have).
  const chosen = process.env.GOMP_SPINCOUNT ?? (process.env.OMP_WAIT_POLICY === undefined ? '20000' : undefined);
  t.is(e.provenance.openmpWait, chosen !== undefined ? `GOMP_SPINCOUNT=${chosen}` : `OMP_WAIT_POLICY=${process.env.OMP_WAIT_POLICY}`);
  t.regex(e.provenance.command!, /^st-native eval \S+ --json$/);
  // 95% Wilson intervals around every accuracy.
  for (const a of e.attacks) t.true(a.interval95[0] <= a.accuracy && a.accuracy <= a.interval95[1], a.name);
  // Paths in the written file are relative to its folder.
  t.like(written, { checkpoint: path.join('checkpoints', 'best.safetensors'), target: { kind: 'run', runDir: '.' }, files: { json: 'eval-best.json', markdown: 'eval-best.md' } });
});

test.serial('an evaluation never overwrites another: the earlier table moves to eval-history/, with a notice', (t) => {
  const before = readFileSync(path.join(runDir, 'eval-best.json'), 'utf8');
  const r = cli('eval', runDir, '--attacks', 'clean,fgsm', '--json');
  const e = json(r);
  const kept = e.notices.find((n) => n.startsWith('the previous eval-best.json/.md were kept as'));
  t.truthy(kept, e.notices.join('\n'));
  const stem = /kept as (\S+)\.json\/\.md$/.exec(kept!)![1]!;
  t.regex(stem, /^eval-history\/eval-best-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d$/);
  t.is(readFileSync(path.join(runDir, `${stem}.json`), 'utf8'), before, 'kept byte for byte');
  t.true(existsSync(path.join(runDir, `${stem}.md`)));
  t.deepEqual((JSON.parse(readFileSync(path.join(runDir, 'eval-best.json'), 'utf8')) as Evaluation).attacks.map((a) => a.name), ['clean', 'fgsm']);
});

test('the Wilson interval matches its closed form at known points', (t) => {
  // k = 0: upper bound z^2 / (n + z^2); k = n: lower bound n / (n + z^2).
  const z2 = 1.959963984540054 ** 2;
  t.true(Math.abs(wilson(0, 50)[1] - z2 / (50 + z2)) < 1e-12);
  t.true(Math.abs(wilson(50, 50)[0] - 50 / (50 + z2)) < 1e-12);
  // 36 of 50, as statsmodels' proportion_confint(36, 50, method='wilson') gives it.
  const [lo, hi] = wilson(36, 50);
  t.true(Math.abs(lo - 0.5833487630404344) < 1e-12 && Math.abs(hi - 0.8252582933408878) < 1e-12, `${lo} ${hi}`);
});

test.serial('eval of a PyTorch state dict: model and classes given, dataset inferred, checksum computed, unverified', (t) => {
  const file = asPytorchFile('torch.safetensors');
  const plain = cli('eval', file, '--attacks', 'clean,fgsm', '--n', '30', '--json');
  t.is(plain.status, 2);
  t.regex(plain.stderr, /model: .*torch\.safetensors does not say which model it holds/);
  const e = json(cli('eval', file, '--model', 'small_cnn', '--classes', '10', '--attacks', 'clean,fgsm,pgd5x2,pgd5-l2', '--n', '30', '--eps', '0.1', '--seed', '7', '--json'));
  t.false(e.verified);
  t.is(e.epoch, null);
  t.is(e.dataset, 'mnist-embedded');
  t.is(e.seed, 7);
  t.is(e.samples, 30);
  t.is(e.checkpointCrc32, readSafetensors(checkpoint).metadata!['st_native.crc32']!);
  t.like(e.attacks[2]!.spec, { kind: 'pgd', epsilon: 0.1, restarts: 2 });
  // --eps alone scales the digits' default step (0.01 at 0.3) with it.
  t.true(Math.abs((e.attacks[2]!.spec as { stepSize: number }).stepSize - 0.1 / 30) < 1e-12);
  t.like(e.attacks[3]!.spec, { kind: 'pgd', norm: 'l2', epsilon: 2, stepSize: 0.5 });
  t.true(e.attacks[3]!.maxPerturbation <= 2 + 1e-5);
  t.deepEqual(e.files, { json: path.join(runs, 'torch.eval.json'), markdown: path.join(runs, 'torch.eval.md') });
  t.true(existsSync(e.files!.markdown));
  // Our own file says its model and classes.
  const ours = json(cli('eval', checkpoint, '--attacks', 'clean', '--n', '10', '--no-write', '--json'));
  t.true(ours.verified);
  t.is(ours.files, null);
  t.false(existsSync(path.join(runDir, 'checkpoints', 'best.eval.json')));
});

test.serial('a checkpoint of another shape fails naming the tensor and both shapes', (t) => {
  const file = asPytorchFile('five-classes.safetensors', (st) => {
    const w = st.tensors.get('classifier.fc3.weight')!;
    st.tensors.set('classifier.fc3.weight', { dtype: 'F32', shape: [5, 200], data: w.data.subarray(0, 5 * 200 * 4) });
    const b = st.tensors.get('classifier.fc3.bias')!;
    st.tensors.set('classifier.fc3.bias', { dtype: 'F32', shape: [5], data: b.data.subarray(0, 5 * 4) });
  });
  const r = cli('eval', file, '--model', 'small_cnn', '--classes', '10', '--attacks', 'clean', '--json');
  t.is(r.status, 1);
  t.regex(r.stderr, /\[ERR_CHECKPOINT\].*tensor classifier\.fc3\.weight has shape \[5, 200\], model expects \[10, 200\]/);
  const arch = cli('eval', file, '--model', 'wrn34_10', '--classes', '10', '--dataset', 'mnist-embedded', '--attacks', 'clean');
  t.is(arch.status, 1);
  t.regex(arch.stderr, /model wrn34_10 is built for inputs \[3, 32, 32\]/);
});

test.serial('models trained elsewhere: a DataParallel state dict loads; a torch.save pickle gets the conversion; a wrong architecture fails before any download', (t) => {
  const ours = json(cli('eval', checkpoint, '--attacks', 'clean', '--n', '30', '--no-write', '--json'));
  const dp = asPytorchFile('data-parallel.safetensors', (st) => {
    st.tensors = new Map([...st.tensors].map(([k, v]) => [`module.${k}`, v]));
  });
  const loaded = json(cli('eval', dp, '--model', 'small_cnn', '--classes', '10', '--attacks', 'clean', '--n', '30', '--no-write', '--json'));
  t.is(loaded.attacks[0]!.correct, ours.attacks[0]!.correct);
  const renamed = asPytorchFile('renamed.safetensors', (st) => {
    st.tensors = new Map([...st.tensors].map(([k, v]) => [`net.${k}`, v]));
  });
  const refused = cli('eval', renamed, '--model', 'small_cnn', '--classes', '10', '--attacks', 'clean');
  t.is(refused.status, 1);
  t.regex(refused.stderr, /\d+ missing tensors: [^;]+; \d+ unexpected tensors: net\./);

  const pickle = path.join(runs, 'model.pt');
  writeFileSync(pickle, Buffer.concat([Buffer.from('PK\x03\x04', 'latin1'), Buffer.alloc(100)]));
  const pt = cli('eval', pickle, '--model', 'small_cnn', '--classes', '10');
  t.is(pt.status, 2);
  t.regex(pt.stderr, /model\.pt is a PyTorch pickle \(torch\.save\), which st-native does not read/);
  t.regex(pt.stderr, /save_file\(\{k: v\.contiguous\(\) for k, v in sd\.items\(\)\}, '.*model\.safetensors'\)/);

  // A SmallCNN file as a ResNet-18 for CIFAR-10, with an empty data folder: the
  // shapes are compared first, and no download is tried.
  const empty = mkdtempSync(path.join(tmpdir(), 'st-no-data-'));
  const wrong = cli('eval', checkpoint, '--model', 'resnet18', '--dataset', 'cifar10', '--data-dir', empty, '--attacks', 'clean');
  t.is(wrong.status, 1, wrong.stderr);
  t.regex(wrong.stderr, /\[ERR_CHECKPOINT\].*does not fit model resnet18/);
  t.notRegex(wrong.stderr, /download|cifar-10-binary/);
  t.deepEqual(readdirSync(empty), []);
});

test.serial('bad attack lists and options are usage errors that say what is wrong', (t) => {
  const cases: [string[], RegExp][] = [
    [['--attacks', 'pgd20,pgd20'], /invalid options:\n {2}attacks\[1\]: "pgd20" is listed twice$/m],
    // pgd-20 is pgd20 spelt with a dash: the same attack twice.
    [['--attacks', 'pgd20,pgd-20'], /attacks\[1\]: "pgd-20" is listed twice \(as "pgd20" before it\)/],
    [['--attacks', 'cw-20,cw20'], /attacks\[1\]: "cw20" is listed twice \(as "cw-20" before it\)/],
    [['--attacks', 'bim'], /unknown attack "bim"/],
    [['--attacks', 'PGD20'], /unknown attack "PGD20" \(did you mean "pgd20"\?\)/],
    [['--attacks', 'apgdce'], /unknown attack "apgdce" \(did you mean "apgd-ce"\?\)/],
    [['--attacks', 'fgsmx3'], /FGSM has no random start/],
    [['--attacks', 'cw-l2'], /unknown attack|CW-inf is an L-inf attack/],
    [['--eps', 'lots'], /--eps: expected a number \(e\.g\. 0\.031 or 8\/255\)/],
    [['--normalize', '0.5,0.5,0.5'], /--normalize: expected MEAN\/STD or an even number/],
    [['--model', 'small_cnn'], /--model: a run folder's model, classes and dataset come from its config\.json/],
    [['--n', '0'], /--n: expected an integer in \[1, 10000000\]/],
    // Negative numbers reach the option's own check (not the parser's "ambiguous").
    [['--n', '-1'], /--n: expected an integer in \[1, 10000000\], got "-1"/],
    [['--eps', '-1'], /--eps: expected a radius >= 0, got "-1"/],
    [['--normalize', '0.5,0.5/0.2'], /--normalize: 2 means and 1 std in "0\.5,0\.5\/0\.2"; give as many stds as means/],
  ];
  for (const [args, message] of cases) {
    const r = cli('eval', runDir, ...args);
    t.is(r.status, 2, args.join(' '));
    t.regex(r.stderr, message, args.join(' '));
  }
  const folder = path.join(runs, 'x.safetensors');
  mkdirSync(folder, { recursive: true });
  const dir = cli('eval', folder, '--model', 'small_cnn');
  t.is(dir.status, 2);
  t.regex(dir.stderr, /x\.safetensors is not a run folder of st-native: it is a folder, not a checkpoint file/);
  t.notRegex(dir.stderr, /--model/);
  const run = cli('eval', checkpoint, '--attacks', 'run');
  t.is(run.status, 2);
  t.regex(run.stderr, /run \(the run's own evaluation\) needs a run folder/);
});

test.serial('pgd-20 is pgd20 under the name given; a table of AutoAttacks alone starts with the clean row', (t) => {
  const dashed = json(cli('eval', runDir, '--attacks', 'pgd-20', '--n', '20', '--json', '--no-write'));
  const plain = json(cli('eval', runDir, '--attacks', 'pgd20', '--n', '20', '--json', '--no-write'));
  t.deepEqual(dashed.attacks.map((a) => a.name), ['pgd-20']);
  t.deepEqual(dashed.worstCase.over, ['clean', 'pgd-20']);
  t.like(dashed.attacks[0]!.spec, { kind: 'pgd', steps: 20 });
  t.is(dashed.attacks[0]!.correct, plain.attacks[0]!.correct);
  const table = cli('eval', runDir, '--attacks', 'pgd-20', '--n', '20', '--no-write');
  t.regex(table.stdout, /^pgd-20 +[\d.]+%/m);
  t.notRegex(table.stdout + table.stderr, /pgd20\b/);

  const aa = json(cli('eval', runDir, '--attacks', 'apgd-ce', '--n', '8', '--batch', '8', '--json', '--no-write'));
  t.deepEqual(aa.attacks.map((a) => a.name), ['clean', 'apgd-ce']);
  t.true(aa.attacks[1]!.correct <= aa.attacks[0]!.correct);
  const text = cli('eval', runDir, '--attacks', 'apgd-ce', '--n', '8', '--batch', '8', '--no-write');
  t.regex(text.stdout, /^clean +[\d.]+%[\s\S]*^apgd-ce +[\d.]+%/m);
  // Listed with another attack, no row is added.
  t.deepEqual(json(cli('eval', runDir, '--attacks', 'fgsm,apgd-ce', '--n', '8', '--batch', '8', '--json', '--no-write')).attacks.map((a) => a.name), ['fgsm', 'apgd-ce']);
});

test.serial('--n beyond the split evaluates every image and says so, in the output and the JSON', (t) => {
  const r = cli('eval', runDir, '--attacks', 'clean', '--n', '100000', '--json', '--no-write');
  const e = json(r);
  t.is(e.samples, 60);
  t.regex(e.notices[0]!, /^asked for 100,000 images; the mnist-embedded test split has 60, so all 60 were evaluated$/);
  const plain = cli('eval', runDir, '--attacks', 'clean', '--n', '100000', '--no-write');
  t.is(plain.status, 0, plain.stderr);
  t.regex(plain.stdout + plain.stderr, /asked for 100,000 images/);
});

test.serial('--save-adversarial writes float32 inputs in the eps-ball and [0,1], with labels and the per-point outcome', (t) => {
  const file = path.join(runs, 'adv.safetensors');
  const e = json(cli('eval', runDir, '--attacks', 'clean,fgsm,pgd10', '--n', '40', '--save-adversarial', file, '--json'));
  t.is(e.adversarialFile, file);
  const st = readSafetensors(file);
  t.is(st.metadata!['st_native.kind'], 'adversarial_examples');
  const f32 = (n: string) => {
    const d = st.tensors.get(n)!;
    t.is(d.dtype, 'F32', n);
    return new Float32Array(d.data.buffer, d.data.byteOffset, d.data.length / 4);
  };
  const x = f32('images');
  t.deepEqual(st.tensors.get('images')!.shape, [40, 1, 28, 28]);
  t.deepEqual(st.tensors.get('labels')!.shape, [40]);
  for (const name of ['fgsm', 'pgd10']) {
    const adv = f32(`adversarial.${name}`);
    let worst = 0;
    let inBox = true;
    for (let i = 0; i < adv.length; i++) {
      worst = Math.max(worst, Math.abs(adv[i]! - x[i]!));
      inBox &&= adv[i]! >= 0 && adv[i]! <= 1;
    }
    t.true(inBox, name);
    t.true(worst <= 0.2 + 1e-6 && worst > 0.1, `${name}: ${worst}`);
    const correct = st.tensors.get(`correct.${name}`)!.data;
    t.is(correct.reduce((a, b) => a + b, 0), e.attacks.find((a) => a.name === name)!.correct);
  }
  const worstCase = st.tensors.get('correct.worst_case')!.data;
  t.is(worstCase.reduce((a, b) => a + b, 0), e.worstCase.correct);
  t.false(st.tensors.has('adversarial.clean'));
});

test.serial('--normalize folds mean/std in front of the model', (t) => {
  const base = ['--attacks', 'clean,fgsm', '--n', '40', '--no-write', '--json'];
  const none = json(cli('eval', checkpoint, ...base));
  const identity = json(cli('eval', checkpoint, ...base, '--normalize', '0/1'));
  t.deepEqual(identity.normalize, { mean: [0], std: [1] });
  t.deepEqual(
    identity.attacks.map((a) => a.correct),
    none.attacks.map((a) => a.correct),
  );
  // A model that never saw normalised inputs is wrong on them: the mismatch shows.
  const wrong = json(cli('eval', checkpoint, ...base, '--normalize', '0.5,0.05'));
  t.deepEqual(wrong.normalize, { mean: [0.5], std: [0.05] });
  t.true(wrong.cleanAccuracy < none.cleanAccuracy - 0.3, `${wrong.cleanAccuracy} vs ${none.cleanAccuracy}`);
});

test.serial('without a TTY: plain progress lines, then the table', (t) => {
  const r = cli('eval', runDir, '--attacks', 'clean,fgsm', '--n', '20', '--no-write');
  t.is(r.status, 0, r.stderr);
  // Progress on stderr, the table alone on stdout (`eval ... > table.txt`).
  t.regex(r.stderr, /^eval: 20 images, clean, fgsm; batch \d+, cpu/m);
  t.regex(r.stderr, /^fgsm: +[\d.]+% \(\d+\/20\) in \d\d:\d\d$/m);
  t.notRegex(r.stdout, /^eval: |^fgsm: /m);
  t.regex(r.stdout, /^worst case +\d+% +\(\d+–\d+%\) +\d+\/20 +\(robust to clean and every attack\)$/m);
  t.regex(r.stdout, /^seed 0, 20 mnist-embedded test images, checkpoint crc32 [0-9a-f]{8}/m);
  // --json: the result alone on stdout, progress events as JSON lines on stderr.
  const j = cli('eval', runDir, '--attacks', 'clean,fgsm', '--n', '20', '--no-write', '--json');
  t.is(j.status, 0, j.stderr);
  JSON.parse(j.stdout);
  const events = j.stderr.trim().split('\n').map((l) => JSON.parse(l) as EvalEvent);
  t.deepEqual([...new Set(events.map((e) => e.type))].sort(), ['attack', 'batch', 'start'].sort());
  t.is(events[0]!.type, 'start');
});

test('plain progress lines carry each attack\'s elapsed time and ETA from its rate', (t) => {
  let clock = 0;
  const lines: string[] = [];
  const p = new PlainEvalPrinter((l) => lines.push(l), 0, () => clock);
  p.push({ type: 'start', attacks: ['pgd20'], samples: 100, batchSize: 25, device: 'cpu', checkpointCrc32: '00000000', verified: true });
  clock = 10_000;
  p.push({ type: 'batch', attack: 'pgd20', index: 0, done: 25, total: 100, correct: 20 });
  clock = 40_000;
  p.push({ type: 'batch', attack: 'pgd20', index: 0, done: 50, total: 100, correct: 40 });
  // 40 s for half the images: 40 s to go.
  t.regex(lines.at(-1)!, /^pgd20: 50\/100 images, 80\.0% so far; 00:40 elapsed, ETA 00:40 \(00:40 in all\)$/);
});

test.serial('the API: the same options, progress events in order, cancellation', async (t) => {
  const events: EvalEvent[] = [];
  const e = await evaluate({ runDir, attacks: ['clean', 'pgd5'], n: 40, batchSize: 10, write: false, onEvent: (ev) => void events.push(ev) });
  t.is(events[0]!.type, 'start');
  t.deepEqual(
    events.filter((ev) => ev.type === 'attack').map((ev) => (ev as { name: string }).name),
    ['clean', 'pgd5'],
  );
  const batches = events.filter((ev) => ev.type === 'batch') as Extract<EvalEvent, { type: 'batch' }>[];
  t.deepEqual(batches.filter((b) => b.attack === 'pgd5').map((b) => b.done), [10, 20, 30, 40]);
  t.is(e.attacks[1]!.correct, batches.at(-1)!.correct);
  t.deepEqual(
    [...PAPER_ATTACKS],
    ['clean', 'fgsm', 'pgd20', 'pgd100', 'cw'],
  );

  // Aborting stops between batches and rejects with the signal's reason; nothing is written.
  const ac = new AbortController();
  const stem = path.join(runDir, 'eval-last');
  const aborted = evaluate({ runDir, checkpoint: 'last', attacks: ['pgd20'], n: 60, batchSize: 5, onEvent: (ev) => ev.type === 'batch' && ac.abort(), signal: ac.signal });
  await t.throwsAsync(aborted, { any: true, name: 'AbortError' });
  t.false(existsSync(`${stem}.json`));
  // Already aborted: rejects at once.
  await t.throwsAsync(evaluate({ runDir, attacks: ['clean'], signal: AbortSignal.abort() }), { any: true, name: 'AbortError' });
  // Options are checked up front, named from `options`.
  await t.throwsAsync(evaluate({ runDir, attacks: [] } as never), { message: /options\.attacks/ });
  await t.throwsAsync(evaluate({ runDir, attacks: ['clean'], epsilon: 2 } as never), { message: /options\.epsilon/ });
  // A copy elsewhere of a run's checkpoint evaluates as a file (with its dataset inferred).
  const copy = path.join(runs, 'copy.safetensors');
  copyFileSync(checkpoint, copy);
  const f = await evaluate({ file: copy, attacks: ['clean'], n: 10, write: false });
  t.like(f, { target: { kind: 'file' }, dataset: 'mnist-embedded', verified: true, samples: 10, model: 'small_cnn' });
});

test('the terminal view: waiting, a progress bar with accuracy so far, results and notices', async (t) => {
  const frameSettles = () => new Promise((resolve) => setTimeout(resolve, 50));
  const store = new EvalStore();
  const { lastFrame, unmount } = render(React.createElement(EvalView, { store }));
  t.teardown(unmount);
  const spec = { kind: 'pgd', name: 'pgd20', norm: 'linf', epsilon: 0.03, stepSize: 0.008, steps: 20, restarts: 1, randomStart: true, keep: 'best' } as const;
  store.push({ type: 'start', attacks: ['clean', 'pgd20'], samples: 100, batchSize: 50, device: 'cpu (2 threads)', checkpointCrc32: '0badf00d', verified: true });
  store.push({ type: 'attack', name: 'clean', spec: { kind: 'clean', name: 'clean' }, accuracy: 0.9, correct: 90, samples: 100, batchSize: 50, seed: 0, maxPerturbation: 0, seconds: 1, stages: null, resumed: false });
  store.push({ type: 'batch', attack: 'pgd20', index: 1, done: 50, total: 100, correct: 20 });
  store.push({ type: 'notice', message: 'pgd20: out of memory at batch size 100; running it again at batch size 50' });
  await frameSettles();
  const frame = lastFrame()!;
  t.regex(frame, /100 images · cpu \(2 threads\) · checkpoint crc32 0badf00d/);
  t.regex(frame, /clean\s+90\.0% \(90\/100\) in 00:01/);
  t.regex(frame, /pgd20\s+█+░+ 50\/100 · 40\.0% so far/);
  t.regex(frame, /note: pgd20: out of memory at batch size 100/);
  store.push({ type: 'attack', name: 'pgd20', spec, accuracy: 0.35, correct: 35, samples: 100, batchSize: 50, seed: 0, maxPerturbation: 0.03, seconds: 61, stages: null, resumed: false });
  await frameSettles();
  t.regex(lastFrame()!, /pgd20\s+35\.0% \(35\/100\) in 01:01/);
});

test('the terminal view of an AutoAttack: its stage, the stage progress and the images still robust', async (t) => {
  const frameSettles = () => new Promise((resolve) => setTimeout(resolve, 50));
  const store = new EvalStore();
  const { lastFrame, unmount } = render(React.createElement(EvalView, { store }));
  t.teardown(unmount);
  store.push({ type: 'start', attacks: ['aa'], samples: 100, batchSize: 50, device: 'cpu (2 threads)', checkpointCrc32: '0badf00d', verified: true });
  store.push({ type: 'stage', attack: 'aa', index: 0, stage: 'apgd-t', stageIndex: 1, stages: 4, points: 60, robust: 60, samples: 100 });
  store.push({ type: 'batch', attack: 'aa', index: 0, done: 30, total: 60, correct: 52 });
  await frameSettles();
  t.regex(lastFrame()!, /aa\s+apgd-t 2\/4 █+░+ 30\/60 · 52\/100 robust so far/);
  const printed: string[] = [];
  let clock = 0;
  const printer = new PlainEvalPrinter((l) => printed.push(l), 0, () => clock);
  printer.push({ type: 'stage', attack: 'aa', index: 0, stage: 'apgd-t', stageIndex: 1, stages: 4, points: 60, robust: 60, samples: 100 });
  clock = 90_000;
  printer.push({ type: 'batch', attack: 'aa', index: 0, done: 30, total: 60, correct: 52 });
  // The stage's own elapsed time and ETA: half its points in 90 s.
  t.deepEqual(printed, ['aa: stage 2/4 apgd-t on 60 images (60/100 robust so far)', 'aa: 30/60 images, 52 robust; 01:30 elapsed, ETA 01:30 (01:30 in all)']);
});

test('radii and normalisation as users write them', (t) => {
  t.is(parseNumber('eps', '8/255'), 8 / 255);
  t.is(parseNumber('eps', '0.3'), 0.3);
  t.deepEqual(parseNormalize('0.4914,0.4822,0.4465/0.2471,0.2435,0.2616'), { mean: [0.4914, 0.4822, 0.4465], std: [0.2471, 0.2435, 0.2616] });
  t.deepEqual(parseNormalize('0.5,0.25'), { mean: [0.5], std: [0.25] });
  t.deepEqual(parseNormalize('1,2,3,4,5,6'), { mean: [1, 2, 3], std: [4, 5, 6] });
  t.throws(() => parseNormalize('0.5/0'), { message: /every std must be > 0/ });
});
