/**
 * A strict, streaming reader for MATLAB level-5 MAT-files (the format of the
 * official SVHN files), enough for numeric arrays: plain `miMATRIX` elements
 * and zlib-compressed `miCOMPRESSED` ones (MATLAB's default since v7, and
 * what the official train_32x32.mat / test_32x32.mat use: 182 MB on disk for
 * 225 MB of pixels), either byte order, small-element tags.
 *
 * Hand-written because no well-kept npm package reads MAT v5 as typed
 * arrays: the one candidate, `mat-for-js` (about 900 downloads a month, one
 * author), turns every value into a JS number in nested arrays, which for
 * SVHN's 225 M pixels would take gigabytes. The format is small and fully
 * specified (MathWorks, "MAT-File Format", level 5), and reading it as a
 * stream lets the caller decode pixels straight into its output buffer:
 * the file is read in 1 MiB pieces and inflated in 64 KiB pieces
 * (through `minizlib`, the synchronous zlib stream that `tar` uses), so no
 * whole copy of the data exists besides the caller's.
 *
 * Reference: https://www.mathworks.com/help/pdf_doc/matlab/matfile_format.pdf
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { Inflate } from 'minizlib';
import { DatasetError } from './errors.js';

/** Data types of data elements (Table 1-1 of the format). */
export const MI = {
  INT8: 1,
  UINT8: 2,
  INT16: 3,
  UINT16: 4,
  INT32: 5,
  UINT32: 6,
  SINGLE: 7,
  DOUBLE: 9,
  INT64: 12,
  UINT64: 13,
  MATRIX: 14,
  COMPRESSED: 15,
  UTF8: 16,
  UTF16: 17,
  UTF32: 18,
} as const;

const MI_NAMES: Record<number, string> = Object.fromEntries(Object.entries(MI).map(([k, v]) => [v, `mi${k}`]));
export const miName = (t: number) => MI_NAMES[t] ?? `unknown data type ${t}`;

/** Byte size of one value of each numeric data type. */
const MI_SIZE: Record<number, number> = { 1: 1, 2: 1, 3: 2, 4: 2, 5: 4, 6: 4, 7: 4, 9: 8, 12: 8, 13: 8 };

/** Array classes (Table 1-3). */
export const MX = {
  CELL: 1,
  STRUCT: 2,
  OBJECT: 3,
  CHAR: 4,
  SPARSE: 5,
  DOUBLE: 6,
  SINGLE: 7,
  INT8: 8,
  UINT8: 9,
  INT16: 10,
  UINT16: 11,
  INT32: 12,
  UINT32: 13,
  INT64: 14,
  UINT64: 15,
} as const;

const MX_NAMES: Record<number, string> = Object.fromEntries(Object.entries(MX).map(([k, v]) => [v, k.toLowerCase()]));
export const mxName = (c: number) => MX_NAMES[c] ?? `unknown class ${c}`;
const NUMERIC_CLASSES = new Set<number>([MX.DOUBLE, MX.SINGLE, MX.INT8, MX.UINT8, MX.INT16, MX.UINT16, MX.INT32, MX.UINT32, MX.INT64, MX.UINT64]);

/** A sequential byte source: the file itself, or a compressed element's inflated bytes. */
interface Source {
  /** Exactly n bytes, or a "truncated" DatasetError. */
  read(n: number): Buffer;
  /** Hands the next n bytes to `sink` in pieces. */
  stream(n: number, sink: (chunk: Buffer) => void): void;
  skip(n: number): void;
  atEnd(): boolean;
  /** Bytes taken from this source so far. */
  readonly consumed: number;
  /** Where we are, for messages. */
  where(): string;
}

class FileSource implements Source {
  private readonly buf = Buffer.allocUnsafe(1 << 20);
  private start = 0;
  private end = 0;
  private pos = 0;
  readonly size: number;

  constructor(
    private readonly file: string,
    private readonly fd: number,
  ) {
    this.size = fstatSync(fd).size;
  }

  get consumed(): number {
    return this.pos;
  }

  where(): string {
    return `byte ${this.pos}`;
  }

  atEnd(): boolean {
    return this.pos >= this.size;
  }

  private need(n: number): void {
    if (this.pos + n > this.size) {
      throw new DatasetError(this.file, `truncated: needs ${n} more bytes at byte ${this.pos}, but the file ends at ${this.size}`);
    }
  }

  /** Up to `max` bytes from the current position, refilling the buffer as needed. */
  private piece(max: number): Buffer {
    if (this.pos >= this.end || this.pos < this.start) {
      const n = readSync(this.fd, this.buf, 0, this.buf.length, this.pos);
      if (n === 0) throw new DatasetError(this.file, `truncated: the file ends at byte ${this.pos}`);
      this.start = this.pos;
      this.end = this.pos + n;
    }
    const from = this.pos - this.start;
    const n = Math.min(max, this.end - this.pos);
    this.pos += n;
    return this.buf.subarray(from, from + n);
  }

  read(n: number): Buffer {
    this.need(n);
    const out = Buffer.allocUnsafe(n);
    let at = 0;
    while (at < n) {
      const p = this.piece(n - at);
      p.copy(out, at);
      at += p.length;
    }
    return out;
  }

  stream(n: number, sink: (chunk: Buffer) => void): void {
    this.need(n);
    let left = n;
    while (left > 0) {
      const p = this.piece(left);
      left -= p.length;
      sink(p);
    }
  }

  skip(n: number): void {
    this.need(n);
    this.pos += n;
  }
}

class InflateSource implements Source {
  private readonly queue: Buffer[] = [];
  private queued = 0;
  private inputLeft: number;
  private ended = false;
  private error: Error | null = null;
  private readonly inflate = new Inflate({});
  private taken = 0;

  constructor(
    private readonly file: string,
    private readonly input: Source,
    compressedBytes: number,
    private readonly offset: number,
  ) {
    this.inputLeft = compressedBytes;
    this.inflate.on('data', (d: Buffer) => {
      this.queue.push(d);
      this.queued += d.length;
    });
    this.inflate.on('error', (e: unknown) => {
      this.error ??= e as Error;
    });
  }

  get consumed(): number {
    return this.taken;
  }

  where(): string {
    return `byte ${this.taken} of the compressed element at byte ${this.offset}`;
  }

  private fail(): never {
    const e = this.error as (Error & { code?: string }) | null;
    if (e) {
      throw new DatasetError(
        this.file,
        e.code === 'Z_BUF_ERROR'
          ? `truncated: the compressed element at byte ${this.offset} ends early (zlib: ${e.message.replace(/^zlib: /, '')})`
          : `corrupt compressed element at byte ${this.offset} (zlib: ${e.message.replace(/^zlib: /, '')})`,
      );
    }
    throw new DatasetError(this.file, `truncated: the compressed element at byte ${this.offset} holds only ${this.taken + this.queued} bytes, fewer than its contents declare`);
  }

  /** Inflates until at least `n` bytes are queued or the element is exhausted. */
  private fill(n: number): void {
    while (this.queued < n) {
      if (this.error) this.fail();
      if (this.inputLeft > 0) {
        const piece = this.input.read(Math.min(64 << 10, this.inputLeft));
        this.inputLeft -= piece.length;
        this.inflate.write(piece);
      } else if (!this.ended) {
        this.ended = true;
        this.inflate.end();
      } else {
        break;
      }
    }
    if (this.error) this.fail();
  }

  private take(max: number): Buffer {
    const head = this.queue[0]!;
    if (head.length <= max) {
      this.queue.shift();
      this.queued -= head.length;
      this.taken += head.length;
      return head;
    }
    this.queue[0] = head.subarray(max);
    this.queued -= max;
    this.taken += max;
    return head.subarray(0, max);
  }

  read(n: number): Buffer {
    this.fill(n);
    if (this.queued < n) this.fail();
    const parts: Buffer[] = [];
    let left = n;
    while (left > 0) {
      const p = this.take(left);
      parts.push(p);
      left -= p.length;
    }
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  }

  stream(n: number, sink: (chunk: Buffer) => void): void {
    let left = n;
    while (left > 0) {
      if (this.queued === 0) this.fill(1);
      if (this.queued === 0) this.fail();
      const p = this.take(left);
      left -= p.length;
      sink(p);
    }
  }

  skip(n: number): void {
    this.stream(n, () => undefined);
  }

  atEnd(): boolean {
    this.fill(1);
    return this.queued === 0;
  }

  /** Whatever compressed input is left after the last element (padding), skipped. */
  finish(): void {
    if (this.inputLeft > 0) this.input.skip(this.inputLeft);
    this.inputLeft = 0;
  }
}

interface Tag {
  type: number;
  nbytes: number;
  /** The data of a small data element (packed in the tag), else null. */
  small: Buffer | null;
  at: string;
}

const pad8 = (n: number) => (8 - (n % 8)) % 8;

function readTag(file: string, src: Source, le: boolean): Tag {
  const at = src.where();
  const b = src.read(8);
  const w0 = le ? b.readUInt32LE(0) : b.readUInt32BE(0);
  if (w0 >>> 16 !== 0) {
    // Small data element: 2-byte size and 2-byte type, data in the next 4 bytes.
    const nbytes = w0 >>> 16;
    const type = w0 & 0xffff;
    if (nbytes > 4) throw new DatasetError(file, `bad data element at ${at}: a small element of ${nbytes} bytes (at most 4 fit)`);
    return { type, nbytes, small: b.subarray(4, 4 + nbytes), at };
  }
  return { type: w0, nbytes: le ? b.readUInt32LE(4) : b.readUInt32BE(4), small: null, at };
}

/** The data of a (non-matrix) element, padding included. */
function readElementData(src: Source, tag: Tag): Buffer {
  if (tag.small) return tag.small;
  const data = src.read(tag.nbytes);
  src.skip(pad8(tag.nbytes));
  return data;
}

export interface MatArrayHeader {
  name: string;
  /** The class number (MX.*) and its name ("uint8", "double", ...). */
  classId: number;
  className: string;
  complex: boolean;
  logical: boolean;
  dims: number[];
}

/** The real part of a numeric array, to be consumed exactly once. */
export interface MatData {
  type: number;
  typeName: string;
  nbytes: number;
  littleEndian: boolean;
  read(): Buffer;
  stream(sink: (chunk: Buffer) => void): void;
}

/**
 * Called for each variable whose name is wanted, with its header. It
 * validates the header (throwing a DatasetError when it is not what it
 * should be) and returns the consumer of the array's real part.
 */
export type MatVisitor = (header: MatArrayHeader) => (data: MatData) => void;

const isNumericClass = (c: number) => NUMERIC_CLASSES.has(c);

function readMatrix(file: string, src: Source, nbytes: number, le: boolean, visitors: Record<string, MatVisitor>, seen: Set<string>): void {
  const start = src.consumed;
  const bodyEnd = start + nbytes;
  const left = () => bodyEnd - src.consumed;
  const flagsTag = readTag(file, src, le);
  if (flagsTag.type !== MI.UINT32 || flagsTag.nbytes !== 8) {
    throw new DatasetError(file, `array at ${flagsTag.at}: expected its array-flags subelement (miUINT32, 8 bytes), got ${miName(flagsTag.type)} of ${flagsTag.nbytes} bytes`);
  }
  const flags = readElementData(src, flagsTag);
  const w = le ? flags.readUInt32LE(0) : flags.readUInt32BE(0);
  const classId = w & 0xff;
  const bits = (w >>> 8) & 0xff;
  const dimsTag = readTag(file, src, le);
  if (dimsTag.type !== MI.INT32 || dimsTag.nbytes % 4 !== 0 || dimsTag.nbytes < 8) {
    throw new DatasetError(file, `array at ${dimsTag.at}: expected its dimensions subelement (miINT32, at least 2 values), got ${miName(dimsTag.type)} of ${dimsTag.nbytes} bytes`);
  }
  const dimsData = readElementData(src, dimsTag);
  const dims: number[] = [];
  for (let i = 0; i < dimsTag.nbytes; i += 4) dims.push(le ? dimsData.readInt32LE(i) : dimsData.readInt32BE(i));
  if (dims.some((d) => d < 0)) throw new DatasetError(file, `array at ${dimsTag.at}: negative dimension in ${dims.join('×')}`);
  const nameTag = readTag(file, src, le);
  if (nameTag.type !== MI.INT8) throw new DatasetError(file, `array at ${nameTag.at}: expected its name subelement (miINT8), got ${miName(nameTag.type)}`);
  const name = readElementData(src, nameTag).toString('latin1');
  if (left() < 0) throw new DatasetError(file, `array "${name}" overruns its declared ${nbytes} bytes`);
  const visitor = Object.hasOwn(visitors, name) ? visitors[name] : undefined;
  if (visitor) {
    if (seen.has(name)) throw new DatasetError(file, `variable ${name} appears twice`);
    seen.add(name);
    const header: MatArrayHeader = {
      name,
      classId,
      className: mxName(classId),
      complex: (bits & 0x08) !== 0,
      logical: (bits & 0x02) !== 0,
      dims,
    };
    const consume = visitor(header);
    if (!isNumericClass(classId)) throw new DatasetError(file, `variable ${name} is a ${header.className} array, not a numeric one`);
    const dataTag = readTag(file, src, le);
    if (!(dataTag.type in MI_SIZE)) throw new DatasetError(file, `variable ${name}: its data at ${dataTag.at} is ${miName(dataTag.type)}, not a numeric type`);
    if (!dataTag.small && dataTag.nbytes > left()) {
      throw new DatasetError(file, `variable ${name}: its data (${dataTag.nbytes} bytes) overruns the array's declared ${nbytes} bytes`);
    }
    let used = false;
    const once = () => {
      if (used) throw new Error('MatData consumed twice');
      used = true;
    };
    consume({
      type: dataTag.type,
      typeName: miName(dataTag.type),
      nbytes: dataTag.nbytes,
      littleEndian: le,
      read: () => {
        once();
        return dataTag.small ?? src.read(dataTag.nbytes);
      },
      stream: (sink) => {
        once();
        if (dataTag.small) sink(dataTag.small);
        else src.stream(dataTag.nbytes, sink);
      },
    });
    if (!used) {
      if (!dataTag.small) src.skip(dataTag.nbytes);
    }
    if (!dataTag.small) src.skip(Math.min(pad8(dataTag.nbytes), Math.max(0, left())));
  }
  // The rest (an imaginary part, other variables' contents) is skipped.
  if (left() < 0) throw new DatasetError(file, `array "${name}" overruns its declared ${nbytes} bytes`);
  src.skip(left());
}

/**
 * Reads a level-5 MAT-file, calling `visitors[name]` for each wanted
 * variable; other variables are skipped. Throws a DatasetError naming the
 * file for anything that is not a well-formed level-5 file.
 */
export function readMatFile(file: string, visitors: Record<string, MatVisitor>): void {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (e) {
    throw new DatasetError(file, `cannot read (${(e as Error).message})`);
  }
  try {
    const src = new FileSource(file, fd);
    if (src.size < 128) throw new DatasetError(file, `truncated or not a MAT-file: ${src.size} bytes, less than the 128-byte level-5 header`);
    const header = src.read(128);
    const text = header.toString('latin1', 0, 116);
    if (text.startsWith('MATLAB 7.3')) throw new DatasetError(file, 'is a MATLAB v7.3 (HDF5) file; expected a level-5 MAT-file (MATLAB 5.0 - 7.2), as the official files are');
    if (!text.startsWith('MATLAB 5.0 MAT-file')) {
      throw new DatasetError(file, `not a MATLAB level-5 MAT-file (its header starts ${JSON.stringify(text.slice(0, 20))}, expected "MATLAB 5.0 MAT-file")`);
    }
    const endian = header.toString('latin1', 126, 128);
    if (endian !== 'IM' && endian !== 'MI') throw new DatasetError(file, `bad MAT-file header: endian indicator ${JSON.stringify(endian)}, expected "IM" or "MI"`);
    const le = endian === 'IM';
    const version = le ? header.readUInt16LE(124) : header.readUInt16BE(124);
    if (version !== 0x0100) throw new DatasetError(file, `bad MAT-file header: version 0x${version.toString(16)}, expected 0x0100`);
    const seen = new Set<string>();
    while (!src.atEnd()) {
      const tag = readTag(file, src, le);
      if (tag.small) continue;
      if (tag.type === MI.COMPRESSED) {
        const start = src.consumed;
        if (tag.nbytes > src.size - start) {
          throw new DatasetError(file, `truncated: the compressed element at ${tag.at} declares ${tag.nbytes} bytes, but the file ends ${src.size - start} bytes later`);
        }
        const inner = new InflateSource(file, src, tag.nbytes, start - 8);
        while (!inner.atEnd()) {
          const t = readTag(file, inner, le);
          if (t.type !== MI.MATRIX) throw new DatasetError(file, `the compressed element at ${tag.at} holds ${miName(t.type)}, expected miMATRIX`);
          readMatrix(file, inner, t.nbytes, le, visitors, seen);
        }
        inner.finish();
      } else if (tag.type === MI.MATRIX) {
        readMatrix(file, src, tag.nbytes, le, visitors, seen);
        src.skip(Math.min(pad8(tag.nbytes), src.size - src.consumed));
      } else {
        // Another top-level element (not written by MATLAB): skip it.
        src.skip(Math.min(tag.nbytes + pad8(tag.nbytes), src.size - src.consumed));
      }
    }
  } catch (e) {
    if (e instanceof DatasetError) throw e;
    // An I/O error, or an allocation a corrupt size asked for.
    throw new DatasetError(file, `cannot read (${(e as Error).message})`);
  } finally {
    closeSync(fd);
  }
}

/** The values of a numeric data element as float64s (integers are exact up to 2^53). */
export function numericValues(file: string, what: string, data: MatData): Float64Array {
  const size = MI_SIZE[data.type];
  if (!size) throw new DatasetError(file, `${what}: data type ${data.typeName} is not numeric`);
  if (data.nbytes % size !== 0) throw new DatasetError(file, `${what}: ${data.nbytes} bytes is not a whole number of ${data.typeName} values`);
  const b = data.read();
  const le = data.littleEndian;
  const n = data.nbytes / size;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const o = i * size;
    switch (data.type) {
      case MI.INT8: out[i] = b.readInt8(o); break;
      case MI.UINT8: out[i] = b[o]!; break;
      case MI.INT16: out[i] = le ? b.readInt16LE(o) : b.readInt16BE(o); break;
      case MI.UINT16: out[i] = le ? b.readUInt16LE(o) : b.readUInt16BE(o); break;
      case MI.INT32: out[i] = le ? b.readInt32LE(o) : b.readInt32BE(o); break;
      case MI.UINT32: out[i] = le ? b.readUInt32LE(o) : b.readUInt32BE(o); break;
      case MI.SINGLE: out[i] = le ? b.readFloatLE(o) : b.readFloatBE(o); break;
      case MI.DOUBLE: out[i] = le ? b.readDoubleLE(o) : b.readDoubleBE(o); break;
      case MI.INT64: out[i] = Number(le ? b.readBigInt64LE(o) : b.readBigInt64BE(o)); break;
      case MI.UINT64: out[i] = Number(le ? b.readBigUInt64LE(o) : b.readBigUInt64BE(o)); break;
    }
  }
  return out;
}
