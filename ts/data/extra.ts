/**
 * The plain format for extra (pseudo-labelled) training images: what
 * `st-native data import-rst` writes, and what users bringing their own data
 * write. One file:
 *
 *   bytes 0..7    ASCII "STEXTRA1"
 *   bytes 8..11   uint32 little-endian: length H of the JSON header
 *   bytes 12..    H bytes of UTF-8 JSON:
 *                   { "count": N, "channels": 3, "height": 32, "width": 32,
 *                     "layout": "NCHW" | "NHWC", "numClasses": 10,
 *                     "sha256": "<hex>" (optional), "source": "..." (optional) }
 *   then          N×C×H×W uint8 pixels in the header's layout (NHWC is
 *                 numpy's `images.tobytes()` for an N×32×32×3 array)
 *   then          N uint8 labels, each below numClasses
 *
 * `sha256` (when present) is over everything after the header: the pixels
 * then the labels. The images are read in ranges (never the whole file into
 * the JS heap); the labels (N bytes) are read whole.
 */
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, fsyncSync, openSync, readSync, renameSync, rmSync, writeSync } from 'node:fs';
import { DatasetError } from './errors.js';

export const EXTRA_MAGIC = 'STEXTRA1';

export interface ExtraHeader {
  count: number;
  channels: number;
  height: number;
  width: number;
  layout: 'NCHW' | 'NHWC';
  numClasses: number;
  sha256?: string;
  source?: string;
}

export interface ExtraData {
  file: string;
  header: ExtraHeader;
  /** Byte offset of the first pixel. */
  dataOffset: number;
  labels: Uint8Array;
}

const positiveInt = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v > 0;

function parseHeader(file: string, json: string): ExtraHeader {
  let h: Record<string, unknown>;
  try {
    h = JSON.parse(json) as Record<string, unknown>;
  } catch (e) {
    throw new DatasetError(file, `the header is not JSON (${(e as Error).message})`);
  }
  for (const k of ['count', 'channels', 'height', 'width', 'numClasses'] as const) {
    if (!positiveInt(h[k])) throw new DatasetError(file, `header field "${k}" must be a positive integer, found ${JSON.stringify(h[k])}`);
  }
  if (h.layout !== 'NCHW' && h.layout !== 'NHWC') throw new DatasetError(file, `header field "layout" must be "NCHW" or "NHWC", found ${JSON.stringify(h.layout)}`);
  if ((h.numClasses as number) > 256) throw new DatasetError(file, `header field "numClasses" must be at most 256 (labels are uint8), found ${h.numClasses}`);
  if (h.sha256 !== undefined && (typeof h.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(h.sha256))) {
    throw new DatasetError(file, `header field "sha256" must be 64 lower-case hex digits, found ${JSON.stringify(h.sha256)}`);
  }
  return h as unknown as ExtraHeader;
}

/** Reads `count` images from `start` in the file's layout into `out` (C×H×W each). */
function readRange(fd: number, data: ExtraData, start: number, count: number, out: Uint8Array): void {
  const { channels: C, height: H, width: W, layout } = data.header;
  const per = C * H * W;
  const src = layout === 'NCHW' ? out : new Uint8Array(count * per);
  let done = 0;
  while (done < src.length) {
    const n = readSync(fd, src, done, src.length - done, data.dataOffset + start * per + done);
    if (n === 0) throw new DatasetError(data.file, `truncated while reading images ${start}..${start + count - 1}`);
    done += n;
  }
  if (layout === 'NHWC') {
    for (let i = 0; i < count; i++) {
      const b = i * per;
      for (let ch = 0; ch < C; ch++) for (let p = 0; p < H * W; p++) out[b + ch * H * W + p] = src[b + p * C + ch]!;
    }
  }
}

/**
 * Opens an extra-data file: checks the magic, header and exact size, reads
 * the labels and checks their range. `verify`: also recompute the sha256
 * (when the header has one), streaming.
 */
export function openExtraData(file: string, verify = false): ExtraData {
  const fd = openSync(file, 'r');
  try {
    const size = fstatSync(fd).size;
    const head = Buffer.alloc(12);
    if (readSync(fd, head, 0, 12, 0) < 12 || head.toString('latin1', 0, 8) !== EXTRA_MAGIC) {
      throw new DatasetError(file, `not an extra-data file: expected it to start with "${EXTRA_MAGIC}"`);
    }
    const hlen = head.readUInt32LE(8);
    if (hlen > 1 << 20 || 12 + hlen > size) throw new DatasetError(file, `truncated or corrupt: a header of ${hlen} bytes in a file of ${size}`);
    const hbuf = Buffer.alloc(hlen);
    readSync(fd, hbuf, 0, hlen, 12);
    const header = parseHeader(file, hbuf.toString('utf8'));
    const dataOffset = 12 + hlen;
    const pixels = header.count * header.channels * header.height * header.width;
    const expected = dataOffset + pixels + header.count;
    if (size !== expected) {
      throw new DatasetError(file, `${size < expected ? 'truncated' : 'too long'}: ${size} bytes, expected ${expected} (${header.count} images of ${header.channels}×${header.height}×${header.width} and ${header.count} labels)`);
    }
    const labels = new Uint8Array(header.count);
    readSync(fd, labels, 0, header.count, dataOffset + pixels);
    const bad = labels.findIndex((l) => l >= header.numClasses);
    if (bad >= 0) throw new DatasetError(file, `label ${bad} is ${labels[bad]}, expected below numClasses ${header.numClasses}`);
    if (verify && header.sha256) {
      const sum = sha256Range(fd, dataOffset, size - dataOffset);
      if (sum !== header.sha256) throw new DatasetError(file, `checksum mismatch: sha256 ${sum}, the header says ${header.sha256}`);
    }
    return { file, header, dataOffset, labels };
  } finally {
    closeSync(fd);
  }
}

/** `count` images from `start`, as C×H×W uint8 (whatever the file's layout). */
export function readExtraImages(data: ExtraData, start: number, count: number): Uint8Array {
  if (start < 0 || count < 0 || start + count > data.header.count) {
    throw new DatasetError(data.file, `images ${start}..${start + count - 1} asked, the file has ${data.header.count}`);
  }
  const { channels: C, height: H, width: W } = data.header;
  const out = new Uint8Array(count * C * H * W);
  const fd = openSync(data.file, 'r');
  try {
    readRange(fd, data, start, count, out);
  } finally {
    closeSync(fd);
  }
  return out;
}

function sha256Range(fd: number, offset: number, length: number): string {
  const hash = createHash('sha256');
  const buf = Buffer.allocUnsafe(4 << 20);
  for (let done = 0; done < length; ) {
    const n = readSync(fd, buf, 0, Math.min(buf.length, length - done), offset + done);
    if (n === 0) break;
    hash.update(buf.subarray(0, n));
    done += n;
  }
  return hash.digest('hex');
}

/**
 * Writes an extra-data file atomically (a temp file beside it, fsynced,
 * then renamed). `pixels` yields the images in `header.layout` piece by
 * piece (whole images or not), so nobody holds them all at once.
 */
export function writeExtraData(file: string, header: Omit<ExtraHeader, 'sha256'>, pixels: Iterable<Uint8Array>, labels: Uint8Array): ExtraHeader {
  const per = header.channels * header.height * header.width;
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  try {
    // The header's sha256 is known only at the end: reserve its room with a placeholder of the same length.
    const placeholder = { ...header, sha256: '0'.repeat(64) };
    const hjson = Buffer.from(JSON.stringify(placeholder), 'utf8');
    const head = Buffer.alloc(12);
    head.write(EXTRA_MAGIC, 0, 'latin1');
    head.writeUInt32LE(hjson.length, 8);
    writeSync(fd, head);
    writeSync(fd, hjson);
    const hash = createHash('sha256');
    let written = 0;
    for (const chunk of pixels) {
      hash.update(chunk);
      for (let off = 0; off < chunk.length; ) off += writeSync(fd, chunk, off, chunk.length - off);
      written += chunk.length;
    }
    if (written !== header.count * per) throw new DatasetError(file, `wrote ${written} pixel bytes, expected ${header.count * per}`);
    if (labels.length !== header.count) throw new DatasetError(file, `${labels.length} labels for ${header.count} images`);
    hash.update(labels);
    writeSync(fd, labels);
    const final: ExtraHeader = { ...header, sha256: hash.digest('hex') };
    const fjson = Buffer.from(JSON.stringify(final), 'utf8');
    if (fjson.length !== hjson.length) throw new Error('extra-data header changed length');
    writeSync(fd, fjson, 0, fjson.length, 12);
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, file);
    return final;
  } catch (e) {
    try {
      closeSync(fd);
    } catch {
      /* already closed */
    }
    rmSync(tmp, { force: true });
    throw e;
  }
}
