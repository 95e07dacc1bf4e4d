import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { datasets, DatasetError, loadDataset, loadEmbeddedMnist } from '../ts/data/index.js';

const full = loadEmbeddedMnist({ trainSize: null, testSize: null });

test('the embedded digits: 10,000 images split 8,004 / 1,996 by index', (t) => {
  t.is(full.train.labels.length + full.test.labels.length, 10_000);
  t.is(full.test.labels.length, 1996);
  t.is(full.train.images.length, full.train.labels.length * 784);
  t.is(full.test.images.length, full.test.labels.length * 784);
  t.deepEqual([full.channels, full.height, full.width], [1, 28, 28]);
});

test('labels are 0..9 and pixels span the uint8 range', (t) => {
  t.deepEqual([...new Set(full.train.labels)].sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  t.is(Math.max(...full.train.images.subarray(0, 784 * 50)), 255);
  t.is(Math.min(...full.train.images.subarray(0, 784 * 50)), 0);
});

test('the split is deterministic and a prefix is class-balanced', (t) => {
  const again = loadEmbeddedMnist({ trainSize: 1000, testSize: 200 });
  t.deepEqual(again.train.labels, full.train.labels.subarray(0, 1000));
  t.deepEqual(again.test.images, full.test.images.subarray(0, 200 * 784));
  const counts = new Array(10).fill(0);
  for (const l of again.train.labels) counts[l] += 1;
  t.true(Math.min(...counts) >= 70 && Math.max(...counts) <= 135, counts.join(','));
});

test('train and test share no image', (t) => {
  const key = (imgs: Uint8Array, i: number) => Buffer.from(imgs.subarray(i * 784, (i + 1) * 784)).toString('base64');
  const train = new Set<string>();
  for (let i = 0; i < full.train.labels.length; i++) train.add(key(full.train.images, i));
  let shared = 0;
  for (let i = 0; i < full.test.labels.length; i++) if (train.has(key(full.test.images, i))) shared += 1;
  // The original MNIST has a handful of exact duplicates; index splitting must not add more.
  t.true(shared < 5, `${shared} shared images`);
});

test('corrupt or truncated class files are refused, naming the file', (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'st-mnist-'));
  for (let c = 0; c < 10; c++) writeFileSync(path.join(dir, `${c}.json`), JSON.stringify({ data: new Array(784 * 2).fill(0.5) }));
  t.is(loadEmbeddedMnist({ trainSize: null, testSize: null }, dir).train.labels.length, 20);
  writeFileSync(path.join(dir, '3.json'), JSON.stringify({ data: new Array(784 + 5).fill(0) }));
  t.throws(() => loadEmbeddedMnist({ trainSize: null, testSize: null }, dir), {
    instanceOf: DatasetError,
    message: /3\.json: "data" has 789 values, expected a positive multiple of 784/,
  });
  writeFileSync(path.join(dir, '3.json'), '{"data": [0.1, 0.2');
  t.throws(() => loadEmbeddedMnist({ trainSize: null, testSize: null }, dir), { instanceOf: DatasetError, message: /3\.json: cannot read JSON/ });
  writeFileSync(path.join(dir, '3.json'), JSON.stringify({ data: [...new Array(783).fill(0), 7] }));
  t.throws(() => loadEmbeddedMnist({ trainSize: null, testSize: null }, dir), { instanceOf: DatasetError, message: /value 7 at index 783/ });
});

test('a validation split is carved off the training split, disjoint from what remains', (t) => {
  const d = loadEmbeddedMnist({ trainSize: null, testSize: null, validationSize: 1000 });
  t.is(d.validation!.labels.length, 1000);
  t.is(d.train.labels.length, 8004 - 1000);
  t.deepEqual(d.train.labels, full.train.labels.subarray(0, 7004));
  t.deepEqual(d.validation!.labels, full.train.labels.subarray(7004));
  t.deepEqual(d.test.labels, full.test.labels);
  t.throws(() => loadEmbeddedMnist({ trainSize: null, testSize: null, validationSize: 9000 }), { instanceOf: DatasetError, message: /leaves no training images/ });
});

test('downloaded datasets that are not there say so, with a code of their own; unknown ones too', (t) => {
  const empty = mkdtempSync(path.join(tmpdir(), 'st-nodata-'));
  const err = t.throws(() => loadDataset('cifar10', { trainSize: null, testSize: null, dataDir: empty }), {
    instanceOf: DatasetError,
    message: /^cifar10: not downloaded yet: cifar-10-binary\.tar\.gz is not in /,
  });
  t.is(err!.code, 'ERR_DATASET_MISSING');
  t.is(t.throws<DatasetError>(() => loadDataset('imagenet', { trainSize: null, testSize: null }))!.code, 'ERR_DATASET_UNAVAILABLE');
  t.is(t.throws(() => loadDataset('imagenet', { trainSize: null, testSize: null }))!.message, 'imagenet: unknown dataset; expected one of mnist-embedded, cifar10, cifar100, svhn');
});

test('the registry describes the embedded split as it is', (t) => {
  const info = datasets.find((d) => d.name === 'mnist-embedded')!;
  t.true(info.description.includes(`${full.train.labels.length.toLocaleString('en-US')} train / ${full.test.labels.length.toLocaleString('en-US')} test`));
});
