/**
 * RST's extra data (Carmon et al. 2019, `ti_500K_pseudo_labeled.pickle`):
 * locating its arrays in the pickle without running it (./pickle.ts),
 * converting it once into the plain extra-data format (./extra.ts), and
 * downloading it. The pickle is a dict with
 *   data:                 uint8 ndarray N×32×32×3 (numpy's C order, HWC)
 *   extrapolated_targets: integer ndarray (or list) of N labels 0..9
 * and possibly other keys (strings, numbers, arrays) that are ignored.
 */
import { closeSync, existsSync, mkdirSync, openSync, readSync } from 'node:fs';
import path from 'node:path';
import { tildify } from '../runtime/cache.js';
import { DownloadError, downloadContentChecked, type DownloadTuning } from './download.js';
import { DatasetError } from './errors.js';
import { openExtraData, writeExtraData, type ExtraData, type ExtraHeader } from './extra.js';
import { offlineReason } from './fetch.js';
import { resolveDataDir } from './folder.js';
import { readPickle, type PickleArray, type PickleValue } from './pickle.js';
import { stderrProgress, type ProgressOutput } from './progress.js';
import { RST_SOURCE, type ExtraSource } from './sources.js';
import type { Environment } from '../environment.js';

const SIDE = 32;
const PIXELS = 3 * SIDE * SIDE;
export const RST_CLASSES = 10;
/** What `import-rst` writes in the data folder's rst/ (the plain extra-data format). */
export const RST_IMPORTED_NAME = 'ti_500K_pseudo_labeled.stextra';
/** The official file's pixels alone; its real size is a little more (for progress only). */
const RST_APPROX_BYTES = 500_000 * PIXELS;

/** Where the arrays are in an RST pickle. */
export interface RstPickle {
  file: string;
  count: number;
  /** Byte range of the N×32×32×3 pixels in the file. */
  imagesOffset: number;
  imagesLength: number;
  labels: Uint8Array;
}

const INT_SIZES: Record<string, number> = { i1: 1, u1: 1, i2: 2, u2: 2, i4: 4, u4: 4, i8: 8, u8: 8 };

function readRange(file: string, offset: number, length: number): Buffer {
  const buf = Buffer.alloc(length);
  const fd = openSync(file, 'r');
  try {
    for (let done = 0; done < length; ) {
      const n = readSync(fd, buf, done, length - done, offset + done);
      if (n === 0) throw new DatasetError(file, `truncated at byte ${offset + done}`);
      done += n;
    }
  } finally {
    closeSync(fd);
  }
  return buf;
}

function labelsOf(file: string, v: PickleValue, count: number): Uint8Array {
  const out = new Uint8Array(count);
  const put = (i: number, x: bigint | number) => {
    if (x < 0 || x >= RST_CLASSES) throw new DatasetError(file, `extrapolated_targets[${i}] is ${x}, expected a class 0..${RST_CLASSES - 1}`);
    out[i] = Number(x);
  };
  if (v.kind === 'list' || v.kind === 'tuple') {
    if (v.items.length !== count) throw new DatasetError(file, `extrapolated_targets has ${v.items.length} labels, expected ${count} (one per image)`);
    v.items.forEach((x, i) => {
      if (x.kind !== 'int') throw new DatasetError(file, `extrapolated_targets[${i}] is a ${x.kind}, expected an int`);
      put(i, x.value);
    });
    return out;
  }
  if (v.kind !== 'ndarray') throw new DatasetError(file, `extrapolated_targets is a ${v.kind}, expected an integer array or list`);
  const size = INT_SIZES[v.dtype.str];
  if (size === undefined) throw new DatasetError(file, `extrapolated_targets has dtype ${v.dtype.str}, expected an integer dtype (i1..i8, u1..u8)`);
  if (size > 1 && v.dtype.byteorder !== '<') throw new DatasetError(file, `extrapolated_targets has byte order "${v.dtype.byteorder}", expected little-endian "<"`);
  if (v.shape.length !== 1 || v.shape[0] !== count) throw new DatasetError(file, `extrapolated_targets has shape (${v.shape.join(', ')}), expected (${count},)`);
  if (v.data.length !== count * size) throw new DatasetError(file, `extrapolated_targets holds ${v.data.length} bytes, expected ${count * size}`);
  const raw = v.data.data ?? readRange(file, v.data.offset, v.data.length);
  const signed = v.dtype.str.startsWith('i');
  for (let i = 0; i < count; i++) {
    const at = i * size;
    switch (size) {
      case 1:
        put(i, signed ? raw.readInt8(at) : raw[at]!);
        break;
      case 2:
        put(i, signed ? raw.readInt16LE(at) : raw.readUInt16LE(at));
        break;
      case 4:
        put(i, signed ? raw.readInt32LE(at) : raw.readUInt32LE(at));
        break;
      default:
        put(i, signed ? raw.readBigInt64LE(at) : raw.readBigUInt64LE(at));
    }
  }
  return out;
}

function imagesOf(file: string, v: PickleValue | undefined): PickleArray {
  if (v === undefined) throw new DatasetError(file, 'the dict has no "data" (the images)');
  if (v.kind !== 'ndarray') throw new DatasetError(file, `"data" is a ${v.kind}, expected a uint8 array N×32×32×3`);
  if (v.dtype.str !== 'u1') throw new DatasetError(file, `"data" has dtype ${v.dtype.byteorder}${v.dtype.str}, expected uint8 (|u1)`);
  const [n, h, w, c] = v.shape;
  if (v.shape.length !== 4 || h !== SIDE || w !== SIDE || c !== 3 || !n) {
    throw new DatasetError(file, `"data" has shape (${v.shape.join(', ')}), expected (N, 32, 32, 3) with N > 0`);
  }
  if (v.fortran) throw new DatasetError(file, '"data" is in Fortran order, expected C order (numpy\'s default)');
  if (v.data.length !== n * PIXELS) throw new DatasetError(file, `"data" holds ${v.data.length} bytes, expected ${n * PIXELS} for ${n} images`);
  return v;
}

/**
 * Reads an RST pickle's structure (never its code: see ./pickle.ts) and
 * checks it: uint8 images N×32×32×3 in C order, N integer labels 0..9. The
 * images are located, not read.
 */
export function readRstPickle(file: string): RstPickle {
  const top = readPickle(file);
  if (top.kind !== 'dict') throw new DatasetError(file, `the pickle holds a ${top.kind}, expected a dict with "data" and "extrapolated_targets"`);
  const images = imagesOf(file, top.entries.get('data'));
  const targets = top.entries.get('extrapolated_targets');
  if (targets === undefined) throw new DatasetError(file, 'the dict has no "extrapolated_targets" (the pseudo-labels)');
  const count = images.shape[0]!;
  return { file, count, imagesOffset: images.data.offset, imagesLength: images.data.length, labels: labelsOf(file, targets, count) };
}

/** HWC pixels of whole images from the pickle, in pieces of `chunk` images, as CHW. */
function* chwChunks(p: RstPickle, chunk: number): Generator<Uint8Array> {
  const fd = openSync(p.file, 'r');
  try {
    const src = Buffer.allocUnsafe(chunk * PIXELS);
    for (let start = 0; start < p.count; start += chunk) {
      const n = Math.min(chunk, p.count - start);
      const len = n * PIXELS;
      for (let done = 0; done < len; ) {
        const got = readSync(fd, src, done, len - done, p.imagesOffset + start * PIXELS + done);
        if (got === 0) throw new DatasetError(p.file, `truncated while reading image ${start}`);
        done += got;
      }
      const out = new Uint8Array(len);
      for (let i = 0; i < n; i++) {
        const b = i * PIXELS;
        for (let ch = 0; ch < 3; ch++) for (let q = 0; q < SIDE * SIDE; q++) out[b + ch * SIDE * SIDE + q] = src[b + q * 3 + ch]!;
      }
      yield out;
    }
  } finally {
    closeSync(fd);
  }
}

export function rstFolder(dataDir?: string | null, env?: Environment, source: ExtraSource = RST_SOURCE): string {
  return path.join(resolveDataDir(dataDir, env), source.folder);
}

export interface ImportResult {
  /** The file written (plain extra-data format). */
  out: string;
  header: ExtraHeader;
  /** Images per class. */
  classCounts: number[];
}

/**
 * Converts an RST pickle into the plain extra-data format at `out`
 * (default: the data folder's rst/ti_500K_pseudo_labeled.stextra), as
 * N×3×32×32 (the layout the other datasets load into), with a sha256.
 * Written atomically: an interrupted import leaves no file under `out`.
 */
export function importRst(file: string, options: { out?: string; dataDir?: string | null; env?: Environment; chunk?: number } = {}): ImportResult {
  if (!existsSync(file)) throw new DatasetError(file, 'no such file');
  const p = readRstPickle(file);
  const out = options.out ? path.resolve(options.out) : path.join(rstFolder(options.dataDir, options.env), RST_IMPORTED_NAME);
  mkdirSync(path.dirname(out), { recursive: true });
  const header = writeExtraData(
    out,
    { count: p.count, channels: 3, height: SIDE, width: SIDE, layout: 'NCHW', numClasses: RST_CLASSES, source: path.basename(file) },
    chwChunks(p, options.chunk ?? 4096),
    p.labels,
  );
  const classCounts = new Array<number>(RST_CLASSES).fill(0);
  for (const l of p.labels) classCounts[l]! += 1;
  return { out, header, classCounts };
}

/** ERR_DATASET_MISSING for the RST file: where to put it, where it comes from, how to import it. */
export function rstMissingError(folder: string, reason: string | null, source: ExtraSource = RST_SOURCE): DatasetError {
  const f = source.file;
  return new DatasetError(
    source.dataset,
    [
      reason ? `not in ${tildify(folder)}, and downloading it failed (${reason}).` : `not downloaded yet: ${f.name} is not in ${tildify(folder)}.`,
      `Put this file in ${folder}${path.sep} (as downloaded):`,
      `  ${f.name}  ${f.url}  (about 1.5 GB; its authors publish no checksum: the import checks its structure)`,
      `then run \`st-native data import-rst ${path.join(folder, f.name)}\`,`,
      `or run \`st-native data fetch rst\` where there is a network.`,
      "Another data folder: --data-dir, the config's dataset.dataDir, or ST_NATIVE_DATA_DIR.",
    ].join('\n'),
    'ERR_DATASET_MISSING',
  );
}

export interface RstFetchOptions {
  dataDir?: string | null;
  env?: Environment;
  source?: ExtraSource;
  progress?: ProgressOutput | null;
  signal?: AbortSignal;
  tuning?: Partial<DownloadTuning>;
}

/**
 * Downloads the RST pickle into the data folder's rst/ unless a readable
 * one is there; offline (`ST_NATIVE_OFFLINE`) it fails at once with
 * ERR_DATASET_MISSING naming the URL and folder. Returns its path.
 */
export async function fetchRst(options: RstFetchOptions = {}): Promise<{ path: string; downloaded: boolean }> {
  const source = options.source ?? RST_SOURCE;
  const folder = rstFolder(options.dataDir, options.env, source);
  const dest = path.join(folder, source.file.name);
  const progress = options.progress === undefined ? stderrProgress(options.env) : options.progress;
  if (existsSync(dest)) {
    readRstPickle(dest);
    progress?.line(`${source.file.name}: already there, contents checked (${dest})`);
    return { path: dest, downloaded: false };
  }
  const offline = offlineReason(options.env);
  if (offline !== null) throw rstMissingError(folder, offline, source);
  try {
    await downloadContentChecked({ name: source.file.name, url: source.file.url, bytes: source.file.bytes ?? RST_APPROX_BYTES }, dest, (part) => void readRstPickle(part), {
      signal: options.signal,
      progress,
      ...options.tuning,
    });
  } catch (e) {
    if (e instanceof DownloadError) throw rstMissingError(folder, e.message, source);
    throw e;
  }
  return { path: dest, downloaded: true };
}

/**
 * The imported RST data for training: the plain file in the data folder's
 * rst/, checked (size, header, labels). Missing: ERR_DATASET_MISSING naming
 * the pickle to fetch and the import command.
 */
export function openRstExtra(options: { dataDir?: string | null; env?: Environment; verify?: boolean } = {}): ExtraData {
  const folder = rstFolder(options.dataDir, options.env);
  const file = path.join(folder, RST_IMPORTED_NAME);
  if (!existsSync(file)) {
    const pickle = path.join(folder, RST_SOURCE.file.name);
    if (existsSync(pickle)) throw new DatasetError('rst', `not imported yet: ${tildify(pickle)} is there; run \`st-native data import-rst ${pickle}\``, 'ERR_DATASET_MISSING');
    throw rstMissingError(folder, null);
  }
  return openExtraData(file, options.verify ?? false);
}
