/**
 * The child process of an isolated run (see isolated.ts): receives one
 * config over IPC, runs it with runExperiment exactly as the parent would
 * in-process, streams every event back and ends with the result or the
 * error. Started by `child_process.fork`; not a public entry point.
 */
import { runExperiment } from './run.js';
import { fromWire, toWire, type FromChild, type ToChild } from './ipc.js';

const send = (msg: FromChild): Promise<void> =>
  new Promise((resolve) => {
    // A parent that is gone cannot be told; the exit below still happens.
    if (!process.connected || !process.send) return resolve();
    process.send(msg, undefined, {}, () => resolve());
  });

const ac = new AbortController();
let handlerError: Error | undefined;
let started = false;

// Ctrl-C in a terminal reaches the whole process group: the parent decides
// what an interrupt means (it aborts through its signal), not the child.
process.on('SIGINT', () => undefined);

// The parent is gone (it exited, crashed or was killed): stop the run as an
// abort would (checkpoint saved), then leave; never outlive the parent.
process.on('disconnect', () => {
  ac.abort();
  if (!started) process.exit(0);
  // A step that never ends must not keep an orphan alive.
  setTimeout(() => process.exit(1), 30_000).unref();
});

process.on('message', (raw) => {
  const msg = raw as ToChild;
  if (msg.type === 'abort') ac.abort();
  else if (msg.type === 'handlerFailed') handlerError ??= fromWire(msg.error);
  else if (msg.type === 'start' && !started) {
    started = true;
    void run(msg);
  }
});

async function run(msg: Extract<ToChild, { type: 'start' }>): Promise<void> {
  let reply: FromChild;
  try {
    const result = await runExperiment(msg.config, {
      signal: ac.signal,
      resume: msg.resume,
      onRunDir: (p) => void send({ type: 'runDir', path: p }),
      onEvent: (event) => {
        // The caller's handler failed in the parent: fail here as an
        // in-process handler's error would (training stops, failed summary).
        if (handlerError) throw handlerError;
        void send({ type: 'event', event });
      },
    });
    reply = { type: 'result', runDir: result.runDir, summary: result.summary };
  } catch (e) {
    reply = { type: 'error', error: toWire(e) };
  }
  await send(reply);
  // Nothing native runs any more: leave at once (the parent waits for this exit).
  process.exit(0);
}
