/**
 * CIFAR-10 and CIFAR-100 from the official binary archives
 * (`cifar-10-binary.tar.gz`, `cifar-100-binary.tar.gz`), read in place.
 *
 * Record layout (https://www.cs.toronto.edu/~kriz/cifar.html): CIFAR-10
 * `<1 label byte><3072 pixel bytes>`, CIFAR-100 `<coarse byte><fine byte><3072>`;
 * the 3072 bytes are the red, green and blue 32×32 planes, rows first, which
 * is already the C×H×W layout the core takes. CIFAR-100 keeps its fine labels
 * (0..99), as the paper and the reference code do.
 *
 * The archive is read with the `tar` package (npm's own tar implementation,
 * maintained by the npm team, with zlib through `minizlib`) in its
 * synchronous list mode, rather than a hand-written tar parser: it handles
 * the formats' corners (ustar/pax/GNU long names, padding, end blocks) and
 * refuses a bad header checksum, and it streams: the archive is read in
 * pieces, gunzipped and parsed as it goes, and each member's bytes are
 * decoded record by record straight into the per-file output buffers. So
 * beyond those buffers the decoder holds one read piece at a time, and the
 * only whole-data copy is joining CIFAR-10's five training batches.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { list as tarList, type ReadEntry } from 'tar';
import { DatasetError } from './errors.js';
import type { Split } from './split.js';

const PIXELS = 3 * 32 * 32;
/** Far above any official member (50,000 records), far below what would exhaust memory. */
const MAX_RECORDS = 200_000;

export interface CifarLayout {
  /** The folder inside the archive. */
  folder: string;
  train: readonly string[];
  test: string;
  /** Label bytes per record; the last one is the label used. */
  labelBytes: number;
  /** Exclusive upper bound of each label byte, in record order. */
  labelLimits: readonly number[];
  /** Names of the label bytes, for messages. */
  labelNames: readonly string[];
}

export const CIFAR10_LAYOUT: CifarLayout = {
  folder: 'cifar-10-batches-bin',
  train: ['data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin'],
  test: 'test_batch.bin',
  labelBytes: 1,
  labelLimits: [10],
  labelNames: ['label'],
};

export const CIFAR100_LAYOUT: CifarLayout = {
  folder: 'cifar-100-binary',
  train: ['train.bin'],
  test: 'test.bin',
  labelBytes: 2,
  labelLimits: [20, 100],
  labelNames: ['coarse label', 'fine label'],
};

/** Decodes one member's records as its bytes arrive, refusing bad labels at once. */
class RecordDecoder {
  readonly split: Split;
  readonly records: number;
  private pos = 0;
  private readonly recordBytes: number;

  constructor(
    private readonly archive: string,
    private readonly member: string,
    private readonly size: number,
    private readonly layout: CifarLayout,
  ) {
    this.recordBytes = layout.labelBytes + PIXELS;
    if (size === 0 || size % this.recordBytes !== 0) {
      throw new DatasetError(
        archive,
        `${member}: ${size} bytes is not a whole, positive number of ${this.recordBytes}-byte records (${layout.labelBytes} label byte${layout.labelBytes > 1 ? 's' : ''} + ${PIXELS} pixels): wrong record size, or not this dataset's binary version`,
      );
    }
    this.records = size / this.recordBytes;
    if (this.records > MAX_RECORDS) {
      throw new DatasetError(archive, `${member}: ${this.records} records is implausibly many (the official files have at most 50,000); refusing to allocate for it`);
    }
    this.split = { images: new Uint8Array(this.records * PIXELS), labels: new Uint8Array(this.records) };
  }

  write(chunk: Buffer): void {
    const { recordBytes, layout } = this;
    const L = layout.labelBytes;
    if (this.pos + chunk.length > this.size) throw new DatasetError(this.archive, `${this.member}: more data than its header's ${this.size} bytes`);
    let i = 0;
    while (i < chunk.length) {
      const record = Math.floor(this.pos / recordBytes);
      const within = this.pos - record * recordBytes;
      if (within < L) {
        const v = chunk[i]!;
        if (v >= layout.labelLimits[within]!) {
          throw new DatasetError(
            this.archive,
            `${this.member}: record ${record} has ${layout.labelNames[within]} ${v}, expected 0..${layout.labelLimits[within]! - 1}`,
          );
        }
        if (within === L - 1) this.split.labels[record] = v;
        i += 1;
        this.pos += 1;
      } else {
        const n = Math.min(recordBytes - within, chunk.length - i);
        this.split.images.set(chunk.subarray(i, i + n), record * PIXELS + (within - L));
        i += n;
        this.pos += n;
      }
    }
  }

  get complete(): boolean {
    return this.pos === this.size;
  }

  get received(): number {
    return this.pos;
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function describeFailure(e: unknown): string {
  const err = e as Error & { code?: string };
  if (err.code === 'Z_BUF_ERROR') return `truncated: the gzip stream ends early (zlib: ${err.message.replace(/^zlib: /, '')})`;
  if (typeof err.code === 'string' && err.code.startsWith('Z_')) return `corrupt gzip data (zlib: ${err.message.replace(/^zlib: /, '')})`;
  if (typeof err.code === 'string' && err.code.startsWith('TAR_')) return `not a valid tar archive (${err.message})`;
  return `cannot read (${err.message ?? String(e)})`;
}

/** The first bytes of a file, to tell "not gzip" from "corrupt gzip". */
function head(file: string, n: number): Buffer {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (e) {
    throw new DatasetError(file, `cannot read (${(e as Error).message})`);
  }
  try {
    const buf = Buffer.alloc(n);
    return buf.subarray(0, readSync(fd, buf, 0, n, 0));
  } finally {
    closeSync(fd);
  }
}

/**
 * Decodes an official CIFAR binary archive into train and test splits, in
 * the archive's own order (data_batch_1..5 for CIFAR-10). Every failure is a
 * DatasetError naming the archive and what is wrong.
 */
export function decodeCifarArchive(archive: string, layout: CifarLayout): { train: Split; test: Split } {
  const magic = head(archive, 2);
  if (magic.length < 2 || magic[0] !== 0x1f || magic[1] !== 0x8b) {
    throw new DatasetError(archive, `not a gzip archive (it starts with ${magic.length ? `0x${magic.toString('hex')}` : 'nothing: the file is empty'}); expected the official ${layout.folder} .tar.gz`);
  }
  const wanted = new Set([...layout.train, layout.test].map((n) => `${layout.folder}/${n}`));
  const decoders = new Map<string, RecordDecoder>();
  let failure: DatasetError | null = null;
  try {
    tarList({
      file: archive,
      sync: true,
      strict: true,
      maxReadSize: 1 << 20,
      onReadEntry: (entry: ReadEntry) => {
        const name = entry.path.replace(/^\.\//, '');
        if (!wanted.has(name)) return;
        if (entry.type !== 'File' && entry.type !== 'OldFile') throw new DatasetError(archive, `${name} is a ${entry.type}, expected a file`);
        if (decoders.has(name)) throw new DatasetError(archive, `${name} appears twice`);
        const decoder = new RecordDecoder(archive, name, entry.size, layout);
        decoders.set(name, decoder);
        entry.on('data', (chunk: Buffer) => {
          // A throw here would unwind through the tar parser's stream
          // machinery; keep the first failure and stop decoding instead.
          if (failure) return;
          try {
            decoder.write(chunk);
          } catch (e) {
            failure = e as DatasetError;
          }
        });
      },
    });
  } catch (e) {
    if (e instanceof DatasetError) throw e;
    if (failure) throw failure;
    throw new DatasetError(archive, describeFailure(e));
  }
  if (failure) throw failure;
  const take = (member: string): Split => {
    const full = `${layout.folder}/${member}`;
    const d = decoders.get(full);
    if (!d) {
      throw new DatasetError(
        archive,
        `has no ${full} (expected ${[...wanted].join(', ')}): not the official ${layout.folder} archive?`,
      );
    }
    if (!d.complete) throw new DatasetError(archive, `truncated: ${full} has ${d.received} of its ${d.records * (layout.labelBytes + PIXELS)} bytes`);
    return d.split;
  };
  const trainParts = layout.train.map(take);
  const test = take(layout.test);
  const train: Split = {
    images: concat(trainParts.map((p) => p.images)),
    labels: concat(trainParts.map((p) => p.labels)),
  };
  return { train, test };
}
