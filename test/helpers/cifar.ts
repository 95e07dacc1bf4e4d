/**
 * CIFAR binary fixtures: records in the official layout (label byte(s), then
 * the red, green and blue 32×32 planes, rows first), packed into a real
 * `.tar.gz` with the `tar` package, in the official archives' folder names.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { create as tarCreate } from 'tar';
import { pixel } from './mat.js';

/** One record per label entry; each entry is [label] (CIFAR-10) or [coarse, fine] (CIFAR-100). `first` numbers the images for pixel(). */
export function cifarRecords(labels: number[][], first = 0): Buffer {
  const L = labels[0]?.length ?? 1;
  const out = Buffer.alloc(labels.length * (L + 3072));
  labels.forEach((lab, k) => {
    const at = k * (L + 3072);
    lab.forEach((v, j) => (out[at + j] = v));
    for (let ch = 0; ch < 3; ch++) {
      for (let r = 0; r < 32; r++) {
        for (let c = 0; c < 32; c++) out[at + L + ch * 1024 + r * 32 + c] = pixel(first + k, ch, r, c);
      }
    }
  });
  return out;
}

/** Writes `members` (path inside the archive -> bytes) into a .tar.gz at `file`. */
export function writeTarGz(file: string, members: Record<string, Buffer | string>): void {
  const dir = mkdtempSync(path.join(tmpdir(), 'st-tar-'));
  try {
    for (const [name, data] of Object.entries(members)) {
      mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
      writeFileSync(path.join(dir, name), data);
    }
    const top = [...new Set(Object.keys(members).map((n) => n.split('/')[0]!))];
    tarCreate({ gzip: true, file, cwd: dir, sync: true, portable: true }, top);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Labels of CIFAR-10 fixture image i (0..9 cycling). */
export const cifar10Label = (i: number) => (i * 3) % 10;

/**
 * A CIFAR-10 binary archive with `perBatch` images in each of the five
 * training batches and `test` test images; image i of the training set is
 * pixel(i, ...), test image j is pixel(1000 + j, ...).
 */
export function cifar10Archive(file: string, perBatch: number[] = [2, 2, 2, 2, 2], test = 3, overrides: Record<string, Buffer> = {}): void {
  const members: Record<string, Buffer | string> = { 'cifar-10-batches-bin/batches.meta.txt': 'airplane\nautomobile\n' };
  let i = 0;
  perBatch.forEach((n, b) => {
    members[`cifar-10-batches-bin/data_batch_${b + 1}.bin`] = cifarRecords(
      Array.from({ length: n }, (_, k) => [cifar10Label(i + k)]),
      i,
    );
    i += n;
  });
  members['cifar-10-batches-bin/test_batch.bin'] = cifarRecords(Array.from({ length: test }, (_, k) => [cifar10Label(k + 1)]), 1000);
  writeTarGz(file, { ...members, ...overrides });
}
