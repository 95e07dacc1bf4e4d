/**
 * Downloads one file safely: into `<file>.part`, resuming an earlier
 * `.part` with an HTTP Range request (or starting over when the server will
 * not resume), retrying a connection that drops mid-file from where it
 * stopped, and renaming to the final name only after the MD5 matched. A
 * `.part` whose MD5 does not match is deleted, so the next try starts
 * clean, and nothing partial ever sits under the final name.
 *
 * Uses Node's built-in fetch (undici): redirects, http and https, no
 * dependency.
 */
import { createHash } from 'node:crypto';
import { createReadStream, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DatasetError } from './errors.js';
import { dropStamp, partPath, writeStamp } from './folder.js';
import { megabytes, ProgressBar, type ProgressOutput } from './progress.js';
import type { RemoteFile } from './sources.js';

/** A download that failed for network reasons (as opposed to bad data). */
export class DownloadError extends Error {
  override name = 'DownloadError';
  readonly code = 'ERR_DOWNLOAD';
  constructor(
    message: string,
    readonly url: string,
    /** Worth another try from where it stopped (a dropped connection, a stall, a 5xx). */
    readonly retryable: boolean,
  ) {
    super(message);
  }
}

export interface DownloadTuning {
  /** Further tries after a connection that dropped or stalled (default 5). */
  retries: number;
  /** Pause before each retry, ms (default 2000). */
  retryDelayMs: number;
  /** Give up on a connection that sends nothing for this long, ms (default 60000). */
  stallTimeoutMs: number;
}

export interface DownloadOptions extends Partial<DownloadTuning> {
  signal?: AbortSignal;
  /** Progress bar and notes; null or absent: silent. */
  progress?: ProgressOutput | null;
}

class StallError extends Error {}
class Restart extends Error {}

/** The message of a fetch failure, with undici's cause (ENOTFOUND, ECONNREFUSED, ...) when it has one. */
function describe(e: unknown): string {
  const err = e as Error & { cause?: { code?: string; message?: string } };
  const cause = err.cause?.message ?? err.cause?.code;
  return cause && cause !== err.message ? `${err.message}: ${cause}` : (err.message ?? String(e));
}

/** Connection-level failures that another try may fix; DNS failures and refusals are not among them. */
function retryableCause(e: unknown): boolean {
  const code = (e as { cause?: { code?: string } }).cause?.code ?? (e as { code?: string }).code;
  return ['ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT'].includes(code ?? '');
}

function partSize(part: string): number {
  try {
    return statSync(part).size;
  } catch {
    return 0;
  }
}

export async function md5File(file: string): Promise<string> {
  const hash = createHash('md5');
  for await (const chunk of createReadStream(file, { highWaterMark: 4 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** `<file>.lock` with our pid, so two processes never write one `.part`. */
function lock(dest: string): () => void {
  const file = `${dest}.lock`;
  for (let i = 0; i < 2; i++) {
    try {
      writeFileSync(file, `${process.pid}\n`, { flag: 'wx' });
      return () => rmSync(file, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new DatasetError(dest, `cannot write to its folder (${(e as Error).message})`);
      const pid = Number.parseInt(readFileSync(file, 'utf8'), 10);
      // Our own pid: another download of this file in this process.
      let alive = pid === process.pid;
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid) {
        try {
          process.kill(pid, 0);
          alive = true;
        } catch (err) {
          alive = (err as NodeJS.ErrnoException).code === 'EPERM';
        }
      }
      if (alive) throw new DatasetError(dest, `another process (pid ${pid}) is downloading it; wait for it to finish, or delete ${file} if that process is gone`);
      rmSync(file, { force: true }); // stale: its process is gone
    }
  }
  throw new DatasetError(dest, `cannot take the download lock ${file}`);
}

interface Attempt {
  url: string;
  part: string;
  have: number;
  expected: number;
  label: string;
  progress: ProgressOutput | null;
  signal: AbortSignal | undefined;
  stallTimeoutMs: number;
}

/** One HTTP request: appends to (or rewrites) the `.part` until the body ends. */
async function attempt(a: Attempt): Promise<void> {
  const ctrl = new AbortController();
  const onAbort = () => ctrl.abort(a.signal!.reason);
  a.signal?.addEventListener('abort', onAbort, { once: true });
  let timer: NodeJS.Timeout | undefined;
  const kick = () => {
    clearTimeout(timer);
    timer = setTimeout(() => ctrl.abort(new StallError()), a.stallTimeoutMs);
  };
  let received = a.have;
  let bar: ProgressBar | null = null;
  try {
    kick();
    let res: Response;
    try {
      res = await fetch(a.url, { headers: a.have > 0 ? { range: `bytes=${a.have}-` } : {}, signal: ctrl.signal, redirect: 'follow' });
    } catch (e) {
      if (ctrl.signal.reason instanceof StallError) throw new DownloadError(`no response from ${a.url} in ${a.stallTimeoutMs / 1000} s`, a.url, true);
      if (a.signal?.aborted) throw e;
      throw new DownloadError(describe(e), a.url, retryableCause(e));
    }
    let offset = 0;
    let total: number | null = null;
    const length = res.headers.get('content-length');
    if (res.status === 206 && a.have > 0) {
      const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(res.headers.get('content-range') ?? '');
      if (!m || Number(m[1]) !== a.have) {
        await res.body?.cancel();
        throw new Restart(`the server answered the resume request with ${res.headers.get('content-range') ?? 'no Content-Range'}`);
      }
      offset = a.have;
      total = m[3] === '*' ? null : Number(m[3]);
    } else if (res.status === 416 && a.have > 0) {
      // Nothing left to send: the .part is complete (the checksum decides), or longer than the file.
      await res.body?.cancel();
      const m = /^bytes \*\/(\d+)$/.exec(res.headers.get('content-range') ?? '');
      if (m && Number(m[1]) === a.have) return;
      throw new Restart('the partial file does not fit the file on the server');
    } else if (res.status === 200) {
      if (a.have > 0) a.progress?.line(`${a.label}: the server does not resume downloads; starting over`);
      total = length !== null ? Number(length) : null;
    } else {
      await res.body?.cancel();
      throw new DownloadError(`HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''} from ${a.url}`, a.url, res.status >= 500 || res.status === 408 || res.status === 429);
    }
    if (!res.body) throw new DownloadError(`empty response from ${a.url}`, a.url, true);
    received = offset;
    if (a.progress) bar = new ProgressBar(a.label, total ?? a.expected, a.progress, offset);
    const fh = await open(a.part, offset > 0 ? 'a' : 'w');
    try {
      try {
        for await (const chunk of res.body) {
          kick();
          await fh.write(chunk);
          received += chunk.length;
          bar?.update(received);
        }
      } catch (e) {
        if (a.signal?.aborted) throw e;
        const why = ctrl.signal.reason instanceof StallError ? `no data for ${a.stallTimeoutMs / 1000} s` : describe(e);
        throw new DownloadError(`connection lost after ${megabytes(received)} (${why})`, a.url, true);
      }
      await fh.sync();
    } finally {
      await fh.close();
    }
    if (total !== null && received !== total) {
      throw new DownloadError(`connection closed after ${received} of ${total} bytes`, a.url, true);
    }
  } finally {
    bar?.end();
    clearTimeout(timer);
    a.signal?.removeEventListener('abort', onAbort);
  }
}

/**
 * Fills `part` with `remote`'s bytes: resumes what is there with an HTTP
 * Range request, retries dropped connections from where they stopped
 * (`retries` times, `retryDelayMs` apart) and starts over once when the
 * server cannot resume. The caller holds the file's lock and checks the
 * digest.
 */
async function fetchPart(remote: { name: string; url: string; bytes: number }, part: string, options: DownloadOptions): Promise<void> {
  const { signal, progress = null } = options;
  const retries = options.retries ?? 5;
  const retryDelayMs = options.retryDelayMs ?? 2000;
  const stallTimeoutMs = options.stallTimeoutMs ?? 60_000;
  let tries = 0;
  let restarts = 0;
  for (;;) {
    signal?.throwIfAborted();
    const have = partSize(part);
    if (tries === 0 && restarts === 0) {
      progress?.line(
        have > 0
          ? `${remote.name}: resuming at ${megabytes(have)} of ${megabytes(remote.bytes)} from ${remote.url}`
          : `${remote.name}: downloading ${megabytes(remote.bytes)} from ${remote.url}`,
      );
    }
    try {
      await attempt({ url: remote.url, part, have, expected: remote.bytes, label: remote.name, progress, signal, stallTimeoutMs });
      return;
    } catch (e) {
      if (signal?.aborted) throw signal.reason ?? e;
      if (e instanceof Restart && restarts < 1) {
        restarts += 1;
        progress?.line(`${remote.name}: ${e.message}; starting over`);
        await rm(part, { force: true });
        continue;
      }
      if (e instanceof Restart) throw new DownloadError(e.message, remote.url, false);
      if (e instanceof DownloadError && e.retryable && tries < retries) {
        tries += 1;
        progress?.line(`${remote.name}: ${e.message}; trying again from ${megabytes(partSize(part))} (${tries}/${retries})`);
        await sleep(retryDelayMs, undefined, signal ? { signal } : undefined);
        continue;
      }
      throw e;
    }
  }
}

/**
 * What every download here shares: one process per file (a lock), the bytes
 * into a resumable `.part` (fetchPart), `verify(part)`, which throws for a
 * wrong file (the `.part` is then deleted), and the `.part` renamed into
 * place, with `stamp.drop()` before and `stamp.write()` after the rename
 * (a dataset's verified stamp) when given.
 */
async function downloadVerified(
  remote: { name: string; url: string; bytes: number },
  dest: string,
  options: DownloadOptions,
  verify: (part: string) => void | Promise<void>,
  stamp?: { drop: () => void; write: () => void },
): Promise<void> {
  mkdirSync(path.dirname(dest), { recursive: true });
  const part = partPath(dest);
  const unlock = lock(dest);
  try {
    await fetchPart(remote, part, options);
    try {
      await verify(part);
    } catch (e) {
      await rm(part, { force: true });
      throw e;
    }
    stamp?.drop();
    await rename(part, dest);
    stamp?.write();
  } finally {
    unlock();
  }
}

/**
 * Downloads `remote` to `dest`. Resolves once `dest` holds the file with the
 * published MD5 (stamped as verified). Rejects with a DownloadError for
 * network failures (the `.part` stays, to resume), a DatasetError for a
 * checksum mismatch (the `.part` is deleted), or the signal's reason.
 */
export async function downloadFile(remote: RemoteFile, dest: string, options: DownloadOptions = {}): Promise<void> {
  const { progress = null } = options;
  let sum = '';
  const verify = async (part: string) => {
    progress?.line(`${remote.name}: checking md5`);
    sum = await md5File(part);
    if (sum !== remote.md5) {
      throw new DatasetError(
        dest,
        `checksum mismatch after downloading ${megabytes(partSize(part))} from ${remote.url}: md5 ${sum}, expected ${remote.md5}; the download was deleted, run again to retry`,
      );
    }
  };
  await downloadVerified(remote, dest, options, verify, { drop: () => dropStamp(dest), write: () => writeStamp(dest, sum) });
  progress?.line(`${remote.name}: done, md5 verified (${dest})`);
}

/**
 * Downloads a file whose authors publish no digest (RST's extra data) the
 * way downloadFile does (a resumable `.part`, one process per file), but
 * checked by `check(part)`, a reading of its contents that throws for a
 * wrong or truncated file; a `.part` that fails it is deleted. `bytes` is
 * only for progress (0 when unknown).
 */
export async function downloadContentChecked(
  remote: { name: string; url: string; bytes: number },
  dest: string,
  check: (part: string) => void,
  options: DownloadOptions = {},
): Promise<void> {
  const { progress = null } = options;
  await downloadVerified(remote, dest, options, (part) => {
    progress?.line(`${remote.name}: checking its contents`);
    check(part);
  });
  progress?.line(`${remote.name}: done, contents checked (${dest})`);
}

/** A file with a published digest, for downloadChecked. */
export interface CheckedRemote {
  /** For progress and messages, e.g. a wheel's file name. */
  name: string;
  url: string;
  /** Expected size, for progress (0 when unknown). */
  bytes: number;
  algorithm: 'sha256' | 'md5';
  /** Lower-case hex. */
  digest: string;
}

/** A download that completed but whose digest is not the published one; its `.part` was deleted. */
export class ChecksumError extends Error {
  override name = 'ChecksumError';
  readonly code = 'ERR_CHECKSUM';
  constructor(
    message: string,
    readonly url: string,
  ) {
    super(message);
  }
}

export async function hashFile(file: string, algorithm: 'sha256' | 'md5'): Promise<string> {
  const hash = createHash(algorithm);
  for await (const chunk of createReadStream(file, { highWaterMark: 4 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * Downloads `remote` to `dest` the way downloadFile does (a `.part` resumed
 * with an HTTP Range request, dropped connections retried from where they
 * stopped, one process per file), but checked against any digest and
 * without a dataset's stamp: for `st-native setup`'s wheels. Resolves once
 * `dest` holds the file with the published digest. Rejects with a
 * DownloadError for network failures (the `.part` stays, to resume), a
 * ChecksumError for a digest mismatch (the `.part` is deleted), or the
 * signal's reason.
 */
export async function downloadChecked(remote: CheckedRemote, dest: string, options: DownloadOptions = {}): Promise<void> {
  await downloadVerified(remote, dest, options, async (part) => {
    options.progress?.line(`${remote.name}: checking ${remote.algorithm}`);
    const sum = await hashFile(part, remote.algorithm);
    if (sum !== remote.digest) {
      throw new ChecksumError(
        `${remote.name}: ${remote.algorithm} mismatch after downloading ${megabytes(partSize(part))} from ${remote.url}: got ${sum}, the index says ${remote.digest}; the download was deleted, run again to retry`,
        remote.url,
      );
    }
  });
}
