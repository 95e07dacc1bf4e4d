/**
 * A paper preset end to end on a fixture-sized CIFAR-10: the real archive
 * format (a .tar.gz of binary records, built here), the real decoding, the
 * preset's ResNet-18 and augmentation, through the CLI. The fixture cannot
 * have the published MD5, so the test stamps it as verified, as a completed
 * download would have.
 */
import test from 'ava';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { datasetFolder, writeStamp } from '../ts/data/folder.js';
import { OFFICIAL_SOURCES } from '../ts/data/sources.js';
import { cifar10Archive } from './helpers/cifar.js';
import { cli } from './helpers/cli.js';

test('cifar10-resnet18-st trains on a fixture-sized CIFAR-10 from the CLI', (t) => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'st-cifar-fixture-'));
  const source = OFFICIAL_SOURCES.cifar10;
  const folder = datasetFolder(dataDir, source);
  mkdirSync(folder, { recursive: true });
  const archive = path.join(folder, source.files[0]!.name);
  cifar10Archive(archive, [8, 8, 8, 8, 8], 16);
  writeStamp(archive, source.files[0]!.md5);
  const runs = mkdtempSync(path.join(tmpdir(), 'st-cifar-runs-'));
  const r = cli('train', '--preset', 'cifar10-resnet18-st', '--data-dir', dataDir, '--runs-dir', runs, '--name', 'fixture', '--json',
    '--device', 'cpu', '--epochs', '1', '--set', 'batchSize=8', '--set', 'dataset.trainSize=16', '--set', 'dataset.testSize=8',
    '--set', 'method.steps=1', '--set', 'eval.steps=1');
  t.is(r.status, 0, r.stderr);
  const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { type: string; model?: string; trainSize?: number; status?: string });
  t.like(events[0], { type: 'start', model: 'resnet18', trainSize: 16 });
  t.like(events.at(-1), { type: 'done', status: 'completed' });
});
