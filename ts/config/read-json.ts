/**
 * Reads a small JSON file supplied by a user (`--config`, a run folder's
 * config.json) without trusting what the path points at: a FIFO would block
 * the process forever, /dev/zero or a huge file would exhaust memory, and a
 * directory gives a confusing EISDIR. Every failure is a ConfigError naming
 * the file by `label`.
 */
import { closeSync, constants, fstatSync, openSync, readSync, statSync, type Stats } from 'node:fs';
import { ConfigError } from './errors.js';

function fail(label: string, message: string): ConfigError {
  return new ConfigError([{ path: label, message }]);
}

function kindOf(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a plain file';
}

function checkStats(st: Stats, label: string, maxBytes: number): void {
  if (!st.isFile()) throw fail(label, `not a regular file (${kindOf(st)})`);
  if (st.size > maxBytes) throw fail(label, `too large: ${st.size} bytes; the limit is ${maxBytes} bytes`);
}

/**
 * Reads at most maxBytes + 1 bytes, so a file that grew after fstat is still
 * caught as too large instead of being read whole. The buffer starts at the
 * stat size and grows, since some regular files (in /proc) report size 0.
 */
function readBounded(fd: number, size: number, label: string, maxBytes: number): Buffer {
  let buf = Buffer.alloc(Math.min(size, maxBytes) + 1);
  let length = 0;
  for (;;) {
    if (length === buf.length) {
      if (length > maxBytes) throw fail(label, `too large: more than ${maxBytes} bytes; the limit is ${maxBytes} bytes`);
      const grown = Buffer.alloc(Math.min(buf.length * 2, maxBytes + 1));
      buf.copy(grown);
      buf = grown;
    }
    const n = readSync(fd, buf, length, buf.length - length, null);
    if (n === 0) return buf.subarray(0, length);
    length += n;
  }
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** The file's bytes, after checking it is a regular file of at most maxBytes. */
function readSmallFile(file: string, label: string, maxBytes: number): Buffer {
  let fd: number;
  try {
    // stat first: opening a FIFO (even non-blocking) could wake up a writer waiting on it.
    checkStats(statSync(file), label, maxBytes);
    // O_NONBLOCK: if the path was swapped for a FIFO since the stat, open returns at once instead of waiting for a writer.
    fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    throw fail(label, `cannot read a JSON object (${errorText(e)})`);
  }
  try {
    // fstat the opened file: the stat above may describe another file than the one opened.
    const st = fstatSync(fd);
    checkStats(st, label, maxBytes);
    return readBounded(fd, st.size, label, maxBytes);
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    throw fail(label, `cannot read a JSON object (${errorText(e)})`);
  } finally {
    closeSync(fd);
  }
}

/**
 * Parses a JSON file of at most maxBytes (default 1 MiB). Throws ConfigError
 * `{path: label}` for anything but a regular file, an oversized file, invalid
 * UTF-8 or invalid JSON. A leading byte order mark is skipped (editors add it).
 */
export function readJsonFile(file: string, label: string, maxBytes = 1 << 20): unknown {
  const bytes = readSmallFile(file, label, maxBytes);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw fail(label, 'not valid UTF-8 text');
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw fail(label, `not valid JSON (${errorText(e)})`);
  }
}
