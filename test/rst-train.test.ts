/**
 * Training with extra data (RST, ST-RST) through the package: RST's pickle
 * imported on first use from where the offline message says to put it, the
 * offline message itself, refusals of files that do not fit, the RST preset
 * from the CLI on fixture-sized CIFAR-10 + a tiny RST pickle, and a short
 * ST-RST run on the embedded digits with held-out digits as the extra split,
 * against the same run without them (README: "Training with extra data").
 */
import test from 'ava';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { train, type TrainSummary } from 'st-native';
import { DatasetError } from '../ts/data/errors.js';
import { writeExtraData } from '../ts/data/extra.js';
import { prepareExtra } from '../ts/data/extra-run.js';
import { datasetFolder, writeStamp } from '../ts/data/folder.js';
import { loadEmbeddedMnist } from '../ts/data/mnist.js';
import { RST_IMPORTED_NAME } from '../ts/data/rst.js';
import { OFFICIAL_SOURCES, RST_SOURCE } from '../ts/data/sources.js';
import { cifar10Archive } from './helpers/cifar.js';
import { cli } from './helpers/cli.js';
import { rstPickle } from './helpers/rst-pickle.js';

const tmp = () => mkdtempSync(path.join(tmpdir(), 'st-rst-train-'));
const CIFAR = { shape: [3, 32, 32] as const, numClasses: 10 };

test('file null: RST pickle placed in <data>/rst/ is imported on first use, then reused', async (t) => {
  const dataDir = tmp();
  const folder = path.join(dataDir, 'rst');
  mkdirSync(folder);
  const { bytes, labels } = rstPickle({ n: 12 });
  writeFileSync(path.join(folder, RST_SOURCE.file.name), bytes);
  const lines: string[] = [];
  const progress = { line: (s: string) => void lines.push(s) };
  const env = { ST_NATIVE_OFFLINE: '1' };
  const data = await prepareExtra({ dataDir, extra: { file: null, fraction: 0.5 } }, CIFAR, { env, progress });
  t.is(data!.file, path.join(folder, RST_IMPORTED_NAME));
  t.is(data!.header.count, 12);
  t.deepEqual([...data!.labels], labels);
  t.true(lines.some((l) => l.includes('importing')));
  // Imported once: the second call opens the .stextra.
  const again = await prepareExtra({ dataDir, extra: { file: null, fraction: 0.5 } }, CIFAR, { env, progress: null });
  t.is(again!.header.sha256, data!.header.sha256);
  t.is(await prepareExtra({ dataDir, extra: null }, CIFAR), null);
});

test('file null, offline and absent: ERR_DATASET_MISSING says where to put the pickle and how to import it', async (t) => {
  const dataDir = tmp();
  const e = await t.throwsAsync(prepareExtra({ dataDir, extra: { file: null, fraction: 0.5 } }, CIFAR, { env: { ST_NATIVE_OFFLINE: '1' }, progress: null }), {
    instanceOf: DatasetError,
  });
  t.is((e as DatasetError).code, 'ERR_DATASET_MISSING');
  t.regex(e!.message, new RegExp(`Put this file in ${path.join(dataDir, 'rst').replaceAll('/', '\\/')}`));
  t.regex(e!.message, /ti_500K_pseudo_labeled\.pickle/);
  t.regex(e!.message, /st-native data import-rst/);
});

test('a file that does not fit the dataset or is truncated is refused, naming it', async (t) => {
  const dir = tmp();
  const gray = path.join(dir, 'gray.stextra');
  writeExtraData(gray, { count: 2, channels: 1, height: 28, width: 28, layout: 'NCHW', numClasses: 10 }, [new Uint8Array(2 * 784)], new Uint8Array([0, 1]));
  await t.throwsAsync(prepareExtra({ extra: { file: gray, fraction: 0.5 } }, CIFAR), { message: new RegExp(`${gray}: images of 1×28×28, the dataset's are 3×32×32`) });
  const many = path.join(dir, 'many.stextra');
  writeExtraData(many, { count: 2, channels: 3, height: 32, width: 32, layout: 'NHWC', numClasses: 20 }, [new Uint8Array(2 * 3072)], new Uint8Array([0, 15]));
  await t.throwsAsync(prepareExtra({ extra: { file: many, fraction: 0.5 } }, CIFAR), { message: /holds label 15; the dataset has 10 classes/ });
  const cut = path.join(dir, 'cut.stextra');
  writeFileSync(cut, readFileSync(many).subarray(0, 500));
  await t.throwsAsync(prepareExtra({ extra: { file: cut, fraction: 0.5 } }, CIFAR), { message: new RegExp(`${cut}: truncated`) });
  await t.throwsAsync(prepareExtra({ extra: { file: path.join(dir, 'absent.stextra'), fraction: 0.5 } }, CIFAR), { message: /absent\.stextra: no such file/ });
});

test('train --preset cifar10-wrn28_10-st-rst starts from the RST pickle placed in the data folder (fixture sizes)', (t) => {
  const dataDir = tmp();
  const source = OFFICIAL_SOURCES.cifar10;
  const folder = datasetFolder(dataDir, source);
  mkdirSync(folder, { recursive: true });
  const archive = path.join(folder, source.files[0]!.name);
  cifar10Archive(archive, [4, 4, 4, 4, 4], 8);
  writeStamp(archive, source.files[0]!.md5);
  mkdirSync(path.join(dataDir, 'rst'));
  writeFileSync(path.join(dataDir, 'rst', RST_SOURCE.file.name), rstPickle({ n: 20 }).bytes);
  const runs = tmp();
  // The preset's everything but the model (WRN-28-10 is far too slow for a CPU test) and the sizes.
  const r = cli('train', '--preset', 'cifar10-wrn28_10-st-rst', '--data-dir', dataDir, '--runs-dir', runs, '--name', 'fixture', '--json',
    '--device', 'cpu', '--epochs', '1', '--set', 'model=resnet18', '--set', 'batchSize=8', '--set', 'dataset.trainSize=8', '--set', 'dataset.testSize=4',
    '--set', 'method.steps=1', '--set', 'eval.steps=1');
  t.is(r.status, 0, r.stderr);
  const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { type: string; trainSize?: number; stepsPerEpoch?: number; status?: string; lr?: number });
  t.like(events[0], { type: 'start', trainSize: 8, stepsPerEpoch: 1 });
  t.like(events.at(-1), { type: 'done', status: 'completed' });
  const config = JSON.parse(readFileSync(path.join(runs, 'fixture', 'config.json'), 'utf8')) as { native: { extra: unknown } };
  t.deepEqual(config.native.extra, { file: path.join(dataDir, 'rst', RST_IMPORTED_NAME), fraction: 0.5 });
});

/**
 * ST-RST in miniature: 256 labelled digits, and 4,000 other training digits
 * with their true labels as the "pseudo-labelled" extra split (a perfect
 * labeller: the best case of RST's pseudo-labels), against the same run on
 * the 256 digits alone; same steps, batch, seed and evaluation.
 */
test.serial('ST-RST on the digits with an extra split, against ST without it', async (t) => {
  const dir = tmp();
  const all = loadEmbeddedMnist({ trainSize: null, testSize: null });
  const [from, count] = [2000, 4000];
  const extra = path.join(dir, 'digits.stextra');
  writeExtraData(
    extra,
    { count, channels: 1, height: 28, width: 28, layout: 'NCHW', numClasses: 10 },
    [all.train.images.subarray(from * 784, (from + count) * 784)],
    all.train.labels.subarray(from, from + count),
  );
  const run = async (name: string, withExtra: boolean): Promise<TrainSummary> => {
    const { summary } = await train({
      overrides: [
        {
          dataset: { trainSize: 256, testSize: 500, extra: withExtra ? { file: extra, fraction: 0.5 } : null },
          method: { name: 'st', reg: 'symmkl', beta: 3, epsilon: 0.1, stepSize: 0.04, steps: 3, branches: 'batched' },
          epochs: 6,
          batchSize: 32,
          optimizer: { lr: 0.05 },
          eval: { epsilon: 0.1, stepSize: 0.02, steps: 10, maxSamples: 500 },
          evalSchedule: { every: 1000, lastEpochs: 0 },
          runsDir: dir,
          runName: name,
          device: 'cpu',
          threads: 2,
        },
      ],
    });
    return summary;
  };
  const plain = await run('st', false);
  const mixed = await run('st-rst', true);
  const [p, m] = [plain.last!, mixed.last!];
  t.log(`ST alone: clean ${p.cleanAcc.toFixed(3)}, PGD-10 ${p.robustAcc.toFixed(3)}; ST-RST: clean ${m.cleanAcc.toFixed(3)}, PGD-10 ${m.robustAcc.toFixed(3)}`);
  t.is(plain.status, 'completed');
  t.is(mixed.status, 'completed');
  // Measured when this test was written (deterministic given the seed and 2
  // threads): clean 0.674 -> 0.794, PGD-10 0.502 -> 0.568. The assertions keep
  // most of that margin; a shorter run (K 2, 5 epochs) went the other way
  // (README: "Training with extra data").
  t.true(m.cleanAcc - p.cleanAcc >= 0.08, `clean ${m.cleanAcc} vs ${p.cleanAcc}`);
  t.true(m.robustAcc - p.robustAcc >= 0.04, `PGD ${m.robustAcc} vs ${p.robustAcc}`);
});
