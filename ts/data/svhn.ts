/**
 * SVHN (cropped digits) from the official `train_32x32.mat` / `test_32x32.mat`
 * (http://ufldl.stanford.edu/housenumbers/): MATLAB level-5 files holding
 *   X: uint8, 32×32×3×N, column-major (MATLAB's order: row fastest, then
 *      column, channel, image), and
 *   y: double, N×1, labels 1..10 where 10 stands for the digit 0.
 * Decoded into N×3×32×32 (C×H×W) uint8 pixels and labels 0..9 (10 → 0, as
 * torchvision does), streaming: each image is transposed from the file's
 * order straight into the output buffer.
 */
import { DatasetError } from './errors.js';
import { MI, MX, numericValues, readMatFile, type MatArrayHeader, type MatData } from './mat.js';
import type { Split } from './split.js';

const SIDE = 32;
const PLANE = SIDE * SIDE;
const PIXELS = 3 * PLANE;
/** Far above the largest official file (extra_32x32.mat, 531,131 images). */
const MAX_IMAGES = 2_000_000;

const shape = (dims: number[]) => dims.join('×');

/** Writes image `n` of the column-major source into the C×H×W output. */
function transpose(src: Uint8Array, at: number, out: Uint8Array, n: number): void {
  let o = n * PIXELS;
  for (let ch = 0; ch < 3; ch++) {
    const plane = at + ch * PLANE;
    for (let r = 0; r < SIDE; r++) {
      for (let c = 0; c < SIDE; c++) out[o++] = src[plane + c * SIDE + r]!;
    }
  }
}

export function decodeSvhnMat(file: string): Split {
  let images: Uint8Array | null = null;
  let imageCount = -1;
  let labels: Uint8Array | null = null;

  const readX = (h: MatArrayHeader) => {
    if (h.classId !== MX.UINT8 || h.complex || h.dims.length !== 4 || h.dims[0] !== SIDE || h.dims[1] !== SIDE || h.dims[2] !== 3 || h.dims[3]! < 1) {
      throw new DatasetError(
        file,
        `variable X is ${h.complex ? 'a complex ' : 'a '}${h.className} array of ${shape(h.dims)}; expected uint8 32×32×3×N (N ≥ 1), SVHN's layout`,
      );
    }
    const n = h.dims[3]!;
    if (n > MAX_IMAGES) throw new DatasetError(file, `variable X claims ${n} images, implausibly many (refusing to allocate for it)`);
    return (data: MatData) => {
      if (data.type !== MI.UINT8) throw new DatasetError(file, `variable X: pixels stored as ${data.typeName}, expected miUINT8`);
      if (data.nbytes !== n * PIXELS) throw new DatasetError(file, `variable X: ${data.nbytes} bytes of pixels, expected ${n * PIXELS} for 32×32×3×${n}`);
      const out = new Uint8Array(n * PIXELS);
      const scratch = Buffer.alloc(PIXELS); // a Buffer like the chunks: one element kind for transpose()
      let fill = 0;
      let img = 0;
      data.stream((chunk) => {
        let i = 0;
        if (fill > 0) {
          const k = Math.min(PIXELS - fill, chunk.length);
          scratch.set(chunk.subarray(0, k), fill);
          fill += k;
          i = k;
          if (fill === PIXELS) {
            transpose(scratch, 0, out, img++);
            fill = 0;
          }
        }
        while (chunk.length - i >= PIXELS) {
          transpose(chunk, i, out, img++);
          i += PIXELS;
        }
        if (i < chunk.length) {
          scratch.set(chunk.subarray(i), 0);
          fill = chunk.length - i;
        }
      });
      images = out;
      imageCount = n;
    };
  };

  const readY = (h: MatArrayHeader) => {
    if (h.classId !== MX.DOUBLE || h.complex || h.dims.length !== 2 || h.dims[1] !== 1 || h.dims[0]! < 1) {
      throw new DatasetError(file, `variable y is ${h.complex ? 'a complex ' : 'a '}${h.className} array of ${shape(h.dims)}; expected double N×1 (N ≥ 1), SVHN's layout`);
    }
    const n = h.dims[0]!;
    if (n > MAX_IMAGES) throw new DatasetError(file, `variable y claims ${n} labels, implausibly many`);
    return (data: MatData) => {
      // MATLAB may store a double array's values in a smaller integer type.
      const size = { [MI.INT8]: 1, [MI.UINT8]: 1, [MI.INT16]: 2, [MI.UINT16]: 2, [MI.INT32]: 4, [MI.UINT32]: 4, [MI.SINGLE]: 4, [MI.DOUBLE]: 8, [MI.INT64]: 8, [MI.UINT64]: 8 }[data.type];
      if (size === undefined || data.nbytes !== n * size) {
        throw new DatasetError(file, `variable y: ${data.nbytes} bytes of ${data.typeName}, expected ${n} values`);
      }
      const values = numericValues(file, 'variable y', data);
      const out = new Uint8Array(n);
      for (let i = 0; i < n; i++) {
        const v = values[i]!;
        if (!Number.isInteger(v) || v < 1 || v > 10) {
          throw new DatasetError(file, `variable y: label ${v} at index ${i} (1-based ${i + 1}), expected an integer 1..10 (10 stands for the digit 0)`);
        }
        out[i] = v % 10;
      }
      labels = out;
    };
  };

  readMatFile(file, { X: readX, y: readY });
  // (TypeScript cannot see the visitors' assignments.)
  const x = images as Uint8Array | null;
  const y = labels as Uint8Array | null;
  if (!x) throw new DatasetError(file, 'has no variable X (the images); not an SVHN 32×32 file?');
  if (!y) throw new DatasetError(file, 'has no variable y (the labels); not an SVHN 32×32 file?');
  if (y.length !== imageCount) throw new DatasetError(file, `X has ${imageCount} images but y has ${y.length} labels`);
  return { images: x, labels: y };
}
