/**
 * Delivers a native job's JSON events to a caller's handler, safely: a
 * handler that throws must not crash the process from inside a native
 * callback, and an async one that rejects must not become an unhandled
 * rejection while the job goes on. Either way the job is cancelled (through
 * `cancel`) and the handler's error becomes the job's error.
 */
export class EventRelay<E> {
  private failed = false;
  private error: unknown;
  private readonly pending = new Set<Promise<void>>();

  constructor(
    private readonly handler: (event: E) => unknown,
    private readonly cancel: () => void,
  ) {}

  /** The function handed to the addon: one JSON event per call. */
  readonly deliver = (json: string): void => {
    if (this.failed) return;
    try {
      const result: unknown = this.handler(JSON.parse(json) as E);
      if (isThenable(result)) {
        const tracked: Promise<void> = Promise.resolve(result).then(
          () => {
            this.pending.delete(tracked);
          },
          (e: unknown) => {
            this.pending.delete(tracked);
            this.fail(e);
          },
        );
        this.pending.add(tracked);
      }
    } catch (e) {
      this.fail(e);
    }
  };

  private fail(e: unknown): void {
    if (this.failed) return;
    this.failed = true;
    this.error = e;
    this.cancel();
  }

  /** Whether the handler failed (then `error` is what it threw or rejected with). */
  get handlerFailed(): boolean {
    return this.failed;
  }

  get handlerError(): unknown {
    return this.error;
  }

  /** Waits for async handlers still running: a late rejection fails the job too. */
  async settle(): Promise<void> {
    await Promise.all([...this.pending]);
  }
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function';
}
