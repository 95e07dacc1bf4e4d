/** One decoded split and the shared "first N" subsetting of the downloadable datasets. */
import type { NativeDataset } from '../native-types.js';
import { DatasetError } from './errors.js';
import type { SubsetSizes } from './mnist.js';

export interface Split {
  /** N×C×H×W uint8 pixels. */
  images: Uint8Array;
  /** N labels. */
  labels: Uint8Array;
}

/** Images [from, to) of a split; the whole split is returned as is, a part is copied (so the rest can be freed). */
function range(split: Split, from: number, to: number, pixels: number): Split {
  if (from === 0 && to === split.labels.length) return split;
  return { images: split.images.slice(from * pixels, to * pixels), labels: split.labels.slice(from, to) };
}

/**
 * The splits as the config asks, in the files' official order: validation
 * is the last `validationSize` training images, training the first
 * `trainSize` of the rest, test the first `testSize` test images (as for
 * the embedded digits, whose order is shuffled instead).
 */
export function subsetSplits(
  what: string,
  full: { train: Split; test: Split },
  sizes: SubsetSizes,
  shape: readonly [number, number, number],
): NativeDataset {
  const pixels = shape[0] * shape[1] * shape[2];
  const nTrain = full.train.labels.length;
  const nValidation = sizes.validationSize ?? 0;
  if (nValidation >= nTrain) {
    throw new DatasetError(what, `validationSize ${nValidation} leaves no training images (the split has ${nTrain})`);
  }
  const kept = nTrain - nValidation;
  const nTest = full.test.labels.length;
  return {
    train: range(full.train, 0, Math.min(kept, sizes.trainSize ?? kept), pixels),
    test: range(full.test, 0, Math.min(nTest, sizes.testSize ?? nTest), pixels),
    ...(nValidation > 0 ? { validation: range(full.train, kept, nTrain, pixels) } : {}),
    channels: shape[0],
    height: shape[1],
    width: shape[2],
  };
}
