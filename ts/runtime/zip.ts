/**
 * Reads a zip file (a Python wheel) and extracts single entries, through
 * yauzl: random access from the central directory (so only the entries asked
 * for are read, not the whole 0.5 GB wheel), Zip64, stored and deflated
 * entries, entry names checked against path traversal, and every entry's size
 * checked against the directory. yauzl does not check CRC-32, so this module
 * does, over the inflated stream with node:zlib's `crc32`: a corrupt wheel
 * whose sha256 was not published must not leave a damaged library behind.
 * Every failure is a ZipError naming the file (and the entry).
 */
import { mkdirSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { crc32 } from 'node:zlib';
import yauzl from 'yauzl';

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

const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

/** yauzl's "no end-of-central-directory record" is what a cut download or an HTML error page gives. */
function openError(file: string, e: unknown): ZipError {
  const m = message(e);
  return new ZipError(file, /End of central directory record signature not found/i.test(m) ? 'not a zip file (no end-of-central-directory record; truncated or not a wheel)' : `not a readable zip: ${m}`);
}

export class ZipReader {
  private constructor(
    readonly file: string,
    private readonly zip: yauzl.ZipFile,
    readonly entries: ZipEntry[],
    /** yauzl's entry behind each of ours, for openReadStream. */
    private readonly sources: WeakMap<ZipEntry, yauzl.Entry>,
  ) {}

  /** Opens `file` and reads its central directory. */
  static async open(file: string): Promise<ZipReader> {
    let zip: yauzl.ZipFile;
    try {
      zip = await yauzl.openPromise(file, { lazyEntries: true, autoClose: false });
    } catch (e) {
      throw openError(file, e);
    }
    const entries: ZipEntry[] = [];
    const sources = new WeakMap<ZipEntry, yauzl.Entry>();
    try {
      for await (const e of zip.eachEntry()) {
        const entry: ZipEntry = {
          name: e.fileName,
          method: e.compressionMethod,
          compressedSize: e.compressedSize,
          size: e.uncompressedSize,
          crc32: e.crc32,
          localHeaderOffset: e.relativeOffsetOfLocalHeader,
          // Made on Unix (3): st_mode sits in the high half of the external attributes.
          mode: e.versionMadeBy >> 8 === 3 ? (e.externalFileAttributes >>> 16) & 0o777 || null : null,
          encrypted: e.isEncrypted(),
        };
        entries.push(entry);
        sources.set(entry, e);
      }
    } catch (e) {
      zip.close();
      throw openError(file, e);
    }
    return new ZipReader(file, zip, entries, sources);
  }

  async close(): Promise<void> {
    this.zip.close();
  }

  /**
   * An entry's uncompressed bytes, as yauzl streams them; throws a ZipError
   * when they do not inflate, their size or their CRC-32 is not what the
   * central directory says (checked after the last chunk).
   */
  private async *chunks(entry: ZipEntry): AsyncGenerator<Buffer> {
    const source = this.sources.get(entry);
    if (!source) throw new ZipError(this.file, `${entry.name} is not an entry of this reader`);
    let stream: Readable;
    try {
      stream = await this.zip.openReadStreamPromise(source);
    } catch (e) {
      throw new ZipError(this.file, `${entry.name} cannot be read: ${message(e)}`);
    }
    let crc = 0;
    try {
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        crc = crc32(chunk, crc);
        yield chunk;
      }
    } catch (e) {
      if (e instanceof ZipError) throw e;
      const zlib = typeof (e as { code?: unknown }).code === 'string' && (e as { code: string }).code.startsWith('Z_');
      throw new ZipError(this.file, `${entry.name} ${zlib ? 'does not inflate' : 'is damaged'}: ${message(e)}`);
    }
    if (crc >>> 0 !== entry.crc32) throw new ZipError(this.file, `${entry.name} fails its CRC-32 check (corrupt wheel)`);
  }

  /** An entry's contents in memory (for small files such as a wheel's METADATA). */
  async read(entry: ZipEntry): Promise<Buffer> {
    const parts: Buffer[] = [];
    for await (const chunk of this.chunks(entry)) parts.push(chunk);
    return Buffer.concat(parts);
  }

  /**
   * Streams an entry into a temp file beside `dest` (creating its folder)
   * with the entry's Unix mode, or 0644, and renames it into place once its
   * CRC-32 has checked out: a failed entry leaves nothing at `dest`.
   */
  async extract(entry: ZipEntry, dest: string): Promise<void> {
    mkdirSync(path.dirname(dest), { recursive: true });
    const temp = `${dest}.${process.pid}.${Date.now().toString(36)}.tmp`;
    const out = await open(temp, 'w', (entry.mode ?? 0o644) | 0o600);
    try {
      try {
        for await (const chunk of this.chunks(entry)) await out.write(chunk);
      } finally {
        await out.close();
      }
      await rename(temp, dest);
    } catch (e) {
      await rm(temp, { force: true });
      throw e;
    }
  }
}
