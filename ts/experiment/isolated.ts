/**
 * One training in its own Node child process (`child.ts`), with the promise
 * and events of an in-process run. Why: libtorch's generator and thread pool
 * are per process, so concurrent trainings stay reproducible only apart; and
 * a native crash or an out-of-memory kill then fails one run's promise
 * (IsolatedRunError, ERR_CHILD_DIED) instead of ending the caller's process.
 *
 * Threads per child: `options.threads`, else the config's `threads`, else an
 * equal share of the machine's cores, floor(cores / isolated runs in flight),
 * at least 1. Runs started in the same tick (`Promise.all` over several)
 * count each other; a sweep running N at a time passes
 * `threads: isolatedThreads(N)` so its shares do not depend on timing.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../config/errors.js';
import type { RunConfig } from '../config/schema.js';
import type { TrainEvent } from '../native-types.js';
import { fromWire, toWire, type FromChild, type ToChild } from './ipc.js';
import { abortReason, type RunOptions, type RunResult } from './run.js';
import { writeSummary } from './run-dir.js';

export interface IsolatedRunOptions extends Omit<RunOptions, 'isolate'> {
  /**
   * After an abort, how long the child may take to stop (finish its step,
   * save `interrupted.safetensors`) before it is killed; default 60 s. A
   * killed child rejects with ERR_CHILD_DIED.
   */
  abortGraceMs?: number;
  /** Called with the child's process id once it is started (monitoring, tests). */
  onChildPid?: (pid: number) => void;
}

export type IsolatedRunErrorCode = 'ERR_CHILD_DIED';

/** A child that ended without a result: crashed, killed (SIGKILL, OOM killer) or exited early. */
export class IsolatedRunError extends Error {
  readonly code: IsolatedRunErrorCode = 'ERR_CHILD_DIED';
  constructor(
    message: string,
    /** The child's exit code, null when a signal ended it. */
    readonly exitCode: number | null,
    /** The signal that ended the child (e.g. 'SIGKILL', 'SIGSEGV'), or null. */
    readonly signal: NodeJS.Signals | null,
    /** The run folder, null when the child died before creating one. */
    readonly runDir: string | null,
    /** The child's process id. */
    readonly pid: number | undefined,
  ) {
    super(message);
    this.name = 'IsolatedRunError';
  }
}

/** Cores the machine lets this process use (the bound the config schema checks threads against). */
const cores = availableParallelism();
/** Isolated runs in flight, for the default share of cores. */
let inFlight = 0;
/** Live children, killed when this process exits so none is orphaned. */
const live = new Set<ChildProcess>();
let exitHookInstalled = false;

/** The threads each of `n` concurrent isolated runs gets by default: floor(cores / n), at least 1. */
export function isolatedThreads(n: number): number {
  return Math.max(1, Math.floor(cores / Math.max(1, n)));
}

/** `options.threads` checked against the cores (more only slows libtorch down). */
export function checkThreads(threads: unknown): number {
  if (typeof threads === 'number' && Number.isInteger(threads) && threads >= 1 && threads <= cores) return threads;
  throw new ConfigError([{ path: 'options.threads', message: `expected an integer from 1 to ${cores} (this machine's cores), got ${String(threads)}` }]);
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // 'exit' is synchronous: a signal is all that can be sent, and SIGKILL is
  // the one that cannot be ignored. (A parent killed outright cannot run
  // this; the child then sees its IPC channel close and stops itself.)
  process.on('exit', () => {
    for (const child of live) child.kill('SIGKILL');
  });
}

const childScript = fileURLToPath(new URL('./child.js', import.meta.url));
/** Bytes of the child's stderr kept for the error message of a child that dies. */
const STDERR_TAIL = 4000;

/**
 * Runs one training in a child process. Same contract as runExperiment:
 * resolves with `{ runDir, summary }` (status `cancelled` after an abort),
 * rejects with the run's own error (ConfigError, DatasetError, NativeError,
 * the onEvent handler's error) rebuilt with its class, or with an
 * IsolatedRunError when the child dies without a result.
 */
export async function runIsolated(config: RunConfig, options: IsolatedRunOptions = {}): Promise<RunResult> {
  const { signal } = options;
  if (signal?.aborted) throw abortReason(signal);
  if (options.threads !== undefined) checkThreads(options.threads);
  const grace = options.abortGraceMs ?? 60_000;
  if (!(Number.isFinite(grace) && grace >= 0)) {
    throw new ConfigError([{ path: 'options.abortGraceMs', message: `expected a number of milliseconds >= 0, got ${String(grace)}` }]);
  }
  inFlight += 1;
  try {
    // Runs started in the same tick see each other before their shares are fixed.
    await new Promise((r) => setImmediate(r));
    if (signal?.aborted) throw abortReason(signal);
    const threads = options.threads ?? config.threads ?? isolatedThreads(inFlight);
    return await supervise({ ...config, threads }, options, grace);
  } finally {
    inFlight -= 1;
  }
}

function supervise(config: RunConfig, options: IsolatedRunOptions, grace: number): Promise<RunResult> {
  const { signal, onEvent } = options;
  installExitHook();
  if (!existsSync(childScript)) throw new Error(`${childScript}: the isolated run's child script is missing (build with npm run build)`);
  const child = fork(childScript, [], {
    // The parent's flags (an inspector port, a test runner's loader) are not the child's business.
    execArgv: [],
    serialization: 'advanced',
    stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
  });
  live.add(child);
  let stderrTail = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    process.stderr.write(chunk);
    stderrTail = (stderrTail + chunk.toString('utf8')).slice(-STDERR_TAIL);
  });

  return new Promise<RunResult>((resolve, reject) => {
    let runDir: string | null = null;
    let outcome: { ok: true; value: RunResult } | { ok: false; error: unknown } | undefined;
    let handlerError: { error: unknown } | undefined;
    const pending = new Set<Promise<void>>();
    let killTimer: NodeJS.Timeout | undefined;

    const tell = (msg: ToChild) => {
      if (child.connected) child.send(msg, (e) => void e /* a child that just died is handled on 'exit' */);
    };
    const onAbort = () => {
      tell({ type: 'abort' });
      // An abandoned run must not keep a child alive forever.
      killTimer ??= setTimeout(() => child.kill('SIGKILL'), grace);
      killTimer.unref();
    };
    const failHandler = (e: unknown) => {
      if (handlerError) return;
      handlerError = { error: e };
      tell({ type: 'handlerFailed', error: toWire(e) });
    };
    signal?.addEventListener('abort', onAbort, { once: true });

    child.on('message', (raw) => {
      const msg = raw as FromChild;
      switch (msg.type) {
        case 'runDir':
          runDir = msg.path;
          try {
            options.onRunDir?.(msg.path);
          } catch (e) {
            failHandler(e);
          }
          break;
        case 'event':
          deliver(msg.event);
          break;
        case 'result':
          outcome = { ok: true, value: { runDir: msg.runDir, summary: msg.summary } };
          break;
        case 'error':
          outcome = { ok: false, error: fromWire(msg.error) };
          break;
      }
    });

    // As EventRelay in-process: a throwing or rejecting handler stops the run and becomes its error.
    const deliver = (event: TrainEvent) => {
      if (handlerError || !onEvent) return;
      try {
        const r: unknown = onEvent(event);
        if (r && typeof (r as PromiseLike<unknown>).then === 'function') {
          const tracked = Promise.resolve(r).then(
            () => void pending.delete(tracked),
            (e: unknown) => {
              pending.delete(tracked);
              failHandler(e);
            },
          );
          pending.add(tracked);
        }
      } catch (e) {
        failHandler(e);
      }
    };

    child.on('error', (e) => {
      // fork failed (no such file, too many processes): no 'exit' may follow.
      if (child.exitCode === null && child.signalCode === null && child.pid === undefined) finish(undefined, null, e);
    });
    child.on('exit', (code, sig) => finish(code, sig));

    let finished = false;
    const finish = (code: number | null | undefined, sig: NodeJS.Signals | null, spawnError?: Error) => {
      if (finished) return;
      finished = true;
      live.delete(child);
      if (killTimer) clearTimeout(killTimer);
      signal?.removeEventListener('abort', onAbort);
      void Promise.all([...pending]).then(() => {
        if (handlerError) {
          const e = handlerError.error;
          // As in-process: the handler's own error, with the run folder; a run
          // that finished before the child heard of the failure (the handler
          // threw on 'done') is recorded as failed all the same.
          if (outcome?.ok) failedSummary(outcome.value.runDir, e);
          if (runDir && e !== null && typeof e === 'object') Object.assign(e, { runDir });
          return reject(e);
        }
        if (outcome?.ok) return resolve(outcome.value);
        if (outcome) return reject(outcome.error);
        reject(deathError(child.pid, code ?? null, sig, runDir, stderrTail, spawnError));
      });
    };

    try {
      if (child.pid !== undefined) options.onChildPid?.(child.pid);
    } catch (e) {
      failHandler(e);
    }
    tell({ type: 'start', config, ...(options.resume ? { resume: options.resume } : {}) });
  });
}

function failedSummary(runDir: string, e: unknown): void {
  const err = e as { message?: unknown; code?: unknown } | null;
  const message = typeof err?.message === 'string' ? err.message : String(e);
  try {
    writeSummary({ path: runDir, checkpoints: path.join(runDir, 'checkpoints') }, { status: 'failed', error: message, ...(typeof err?.code === 'string' ? { code: err.code } : {}) });
  } catch {
    /* the handler's error is the one to report */
  }
}

function deathError(pid: number | undefined, code: number | null, sig: NodeJS.Signals | null, runDir: string | null, stderrTail: string, spawnError?: Error): IsolatedRunError {
  const how = spawnError
    ? `could not start (${spawnError.message})`
    : sig === 'SIGKILL'
      ? 'was killed by SIGKILL (out of memory, or killed from outside)'
      : sig
        ? `was killed by ${sig}${sig === 'SIGSEGV' || sig === 'SIGABRT' || sig === 'SIGBUS' ? ' (a native crash)' : ''}`
        : `exited with code ${code} before reporting a result`;
  const where = runDir ? `run folder ${runDir}` : 'no run folder had been created';
  const tail = stderrTail.trim() ? `\nlast output of the child:\n${stderrTail.trim().split('\n').slice(-10).join('\n')}` : '';
  // The run folder says what happened too, as a failed in-process run's would.
  if (runDir) {
    try {
      writeSummary({ path: runDir, checkpoints: path.join(runDir, 'checkpoints') }, { status: 'failed', error: `training process ${how}`, code: 'ERR_CHILD_DIED' });
    } catch {
      /* the error below is the one to report */
    }
  }
  return new IsolatedRunError(`isolated training process${pid ? ` (pid ${pid})` : ''} ${how}; ${where}${tail}`, code, sig, runDir, pid);
}
