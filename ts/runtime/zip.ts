/**
 * Reads a zip file (a Python wheel) from its central directory, and
 * extracts single entries, checked against their CRC-32 and size. Stored
 * and deflated entries, Zip64 (entries or offsets past 4 GiB); no
 * encryption, no multi-disk archives: wheels use neither.
 *
 * Hand-written because no zip reader is among the dependencies (yauzl would
 * be the library of choice); inflating is minizlib's (synchronous, on Node's
 * zlib binding). Random access from the central directory means only the
 * entries asked for are read, not the whole 0.5 GB wheel.
 */
import { mkdirSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { InflateRaw } from 'minizlib';

export interface ZipEntry {
  name: string;
  /** 0 stored, 8 deflated. */
  method: number;
  compressedSize: number;
  size: number;
  crc32: number;
  localHeaderOffset: number;
  /** Unix permission bits when the archive was made on Unix, else null. */
  mode: number | null;
  encrypted: boolean;
}

/** A zip that cannot be read as one; names the file and the problem. */
export class ZipError extends Error {
  override name = 'ZipError';
  readonly code = 'ERR_ZIP';
  constructor(
    readonly file: string,
    problem: string,
  ) {
    super(`${file}: ${problem}`);
  }
}

const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const SIG_ZIP64_EOCD = 0x06064b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_LOCAL = 0x04034b50;
const U32 = 0xffffffff;
const U16 = 0xffff;

async function readAt(fh: FileHandle, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  let got = 0;
  while (got < length) {
    const { bytesRead } = await fh.read(buf, got, length - got, position + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return got === length ? buf : buf.subarray(0, got);
}

const u64 = (b: Buffer, at: number) => Number(b.readBigUInt64LE(at));

export class ZipReader {
  private constructor(
    readonly file: string,
    private readonly fh: FileHandle,
    private readonly fileSize: number,
    readonly entries: ZipEntry[],
  ) {}

  /** Opens `file` and reads its central directory. */
  static async open(file: string): Promise<ZipReader> {
    const fh = await open(file, 'r');
    try {
      const size = (await fh.stat()).size;
      const entries = await readCentralDirectory(file, fh, size);
      return new ZipReader(file, fh, size, entries);
    } catch (e) {
      await fh.close();
      throw e;
    }
  }

  async close(): Promise<void> {
    await this.fh.close();
  }

  /** Where an entry's data starts: after its local header, whose name and extra lengths may differ from the central one's. */
  private async dataStart(entry: ZipEntry): Promise<number> {
    const local = await readAt(this.fh, entry.localHeaderOffset, 30);
    if (local.length < 30 || local.readUInt32LE(0) !== SIG_LOCAL) throw new ZipError(this.file, `no local header for ${entry.name} at byte ${entry.localHeaderOffset}`);
    const start = entry.localHeaderOffset + 30 + local.readUInt16LE(26) + local.readUInt16LE(28);
    if (start + entry.compressedSize > this.fileSize) throw new ZipError(this.file, `${entry.name} runs past the end of the file (truncated?)`);
    return start;
  }

  /**
   * Streams an entry's uncompressed bytes to `sink`, 1 MiB of compressed
   * data at a time; throws a ZipError when its CRC-32 or size is not what
   * the central directory says.
   */
  async pipe(entry: ZipEntry, sink: (chunk: Buffer) => Promise<void> | void): Promise<void> {
    if (entry.encrypted) throw new ZipError(this.file, `${entry.name} is encrypted`);
    if (entry.method !== 0 && entry.method !== 8) throw new ZipError(this.file, `${entry.name} uses compression method ${entry.method}; only stored (0) and deflate (8) are read`);
    let position = await this.dataStart(entry);
    const end = position + entry.compressedSize;
    let crc = 0;
    let size = 0;
    const out: Buffer[] = [];
    let inflateError: Error | null = null;
    const inflate = entry.method === 8 ? new InflateRaw({}) : null;
    inflate?.on('data', (chunk: Buffer) => out.push(chunk));
    inflate?.on('error', (e: unknown) => (inflateError ??= e instanceof Error ? e : new Error(String(e))));
    const drain = async () => {
      if (inflateError) throw new ZipError(this.file, `${entry.name} does not inflate: ${(inflateError as Error).message}`);
      for (const chunk of out.splice(0)) {
        crc = crc32(chunk, crc);
        size += chunk.length;
        if (size > entry.size) throw new ZipError(this.file, `${entry.name} inflates to more than its stated ${entry.size} bytes`);
        await sink(chunk);
      }
    };
    while (position < end) {
      const chunk = await readAt(this.fh, position, Math.min(1 << 20, end - position));
      if (chunk.length === 0) throw new ZipError(this.file, `${entry.name} is cut short`);
      position += chunk.length;
      if (inflate) {
        try {
          inflate.write(chunk);
        } catch (e) {
          inflateError ??= e as Error;
        }
      } else out.push(chunk);
      await drain();
    }
    if (inflate) {
      try {
        inflate.end();
      } catch (e) {
        inflateError ??= e as Error;
      }
    }
    await drain();
    if (size !== entry.size) throw new ZipError(this.file, `${entry.name} has ${size} bytes, the directory says ${entry.size}`);
    if (crc >>> 0 !== entry.crc32) throw new ZipError(this.file, `${entry.name} fails its CRC-32 check (corrupt wheel)`);
  }

  /** An entry's contents in memory (for small files such as a wheel's METADATA). */
  async read(entry: ZipEntry): Promise<Buffer> {
    const parts: Buffer[] = [];
    await this.pipe(entry, (c) => void parts.push(c));
    return Buffer.concat(parts);
  }

  /** Writes an entry to `dest` (creating its folder) with the entry's Unix mode, or 0644. */
  async extract(entry: ZipEntry, dest: string): Promise<void> {
    mkdirSync(path.dirname(dest), { recursive: true });
    const out = await open(dest, 'w', (entry.mode ?? 0o644) | 0o600);
    try {
      await this.pipe(entry, async (c) => {
        await out.write(c);
      });
    } finally {
      await out.close();
    }
  }
}

/** Finds the end-of-central-directory record (and its Zip64 twin) and parses every entry. */
async function readCentralDirectory(file: string, fh: FileHandle, size: number): Promise<ZipEntry[]> {
  // The record is 22 bytes plus a comment of at most 65535.
  const tailLength = Math.min(size, 22 + 0xffff);
  const tail = await readAt(fh, size - tailLength, tailLength);
  let eocd = -1;
  for (let i = tail.length - 22; i >= 0; i--) {
    if (tail.readUInt32LE(i) === SIG_EOCD) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new ZipError(file, 'not a zip file (no end-of-central-directory record; truncated or not a wheel)');
  let count = tail.readUInt16LE(eocd + 10);
  let cdSize = tail.readUInt32LE(eocd + 12);
  let cdOffset = tail.readUInt32LE(eocd + 16);
  if (tail.readUInt16LE(eocd + 4) !== 0 || tail.readUInt16LE(eocd + 6) !== 0) throw new ZipError(file, 'a multi-disk archive');
  if (count === U16 || cdSize === U32 || cdOffset === U32) {
    const locatorAt = eocd - 20;
    if (locatorAt < 0 || tail.readUInt32LE(locatorAt) !== SIG_ZIP64_LOCATOR) throw new ZipError(file, 'Zip64 sizes without a Zip64 locator');
    const recordOffset = u64(tail, locatorAt + 8);
    const record = await readAt(fh, recordOffset, 56);
    if (record.length < 56 || record.readUInt32LE(0) !== SIG_ZIP64_EOCD) throw new ZipError(file, `no Zip64 end-of-central-directory record at byte ${recordOffset}`);
    count = u64(record, 32);
    cdSize = u64(record, 40);
    cdOffset = u64(record, 48);
  }
  if (cdOffset + cdSize > size) throw new ZipError(file, `the central directory (${cdSize} bytes at ${cdOffset}) runs past the end of the file (${size} bytes)`);
  const cd = await readAt(fh, cdOffset, cdSize);
  const entries: ZipEntry[] = [];
  let at = 0;
  for (let n = 0; n < count; n++) {
    if (at + 46 > cd.length || cd.readUInt32LE(at) !== SIG_CENTRAL) throw new ZipError(file, `central directory entry ${n + 1} of ${count} is damaged`);
    const madeBy = cd.readUInt16LE(at + 4) >> 8;
    const flags = cd.readUInt16LE(at + 8);
    const method = cd.readUInt16LE(at + 10);
    const crc = cd.readUInt32LE(at + 16);
    let compressedSize = cd.readUInt32LE(at + 20);
    let uncompressed = cd.readUInt32LE(at + 24);
    const nameLength = cd.readUInt16LE(at + 28);
    const extraLength = cd.readUInt16LE(at + 30);
    const commentLength = cd.readUInt16LE(at + 32);
    const external = cd.readUInt32LE(at + 38);
    let offset = cd.readUInt32LE(at + 42);
    const name = cd.toString('utf8', at + 46, at + 46 + nameLength);
    // Zip64 extended information: only the fields whose 32-bit value is saturated, in this order.
    let extra = at + 46 + nameLength;
    const extraEnd = extra + extraLength;
    while (extra + 4 <= extraEnd) {
      const id = cd.readUInt16LE(extra);
      const len = cd.readUInt16LE(extra + 2);
      if (id === 0x0001) {
        let p = extra + 4;
        if (uncompressed === U32) (uncompressed = u64(cd, p)), (p += 8);
        if (compressedSize === U32) (compressedSize = u64(cd, p)), (p += 8);
        if (offset === U32) offset = u64(cd, p);
      }
      extra += 4 + len;
    }
    const unixMode = madeBy === 3 ? (external >>> 16) & 0o777 : 0;
    entries.push({
      name,
      method,
      compressedSize,
      size: uncompressed,
      crc32: crc,
      localHeaderOffset: offset,
      mode: unixMode || null,
      encrypted: (flags & 1) === 1,
    });
    at = extraEnd + commentLength;
  }
  return entries;
}
