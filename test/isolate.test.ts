/**
 * Trainings in their own processes (`isolate: true`, runIsolated) on the
 * real addon and the embedded digits, kept tiny (128 images, one epoch):
 * the same numbers as in-process, alone or two at a time; a child killed
 * with SIGKILL fails its promise with ERR_CHILD_DIED and this process goes
 * on; abort resolves `cancelled`; no child outlives its parent.
 * Serial: the machine has two cores.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { IsolatedRunError, isolatedThreads, resolveConfig, runIsolated, train, type ConfigOverrides, type TrainEvent, type TrainSummary } from 'st-native';

const runsDir = mkdtempSync(path.join(tmpdir(), 'st-native-isolate-'));

/** One epoch on 128 digits with a 2-step attack: a few seconds, still every event kind. */
const tiny = (name: string, extra: ConfigOverrides = {}): ConfigOverrides[] => [
  { dataset: { trainSize: 128, testSize: 50 }, epochs: 1, batchSize: 32, method: { steps: 2 }, eval: { steps: 2, maxSamples: 50 }, runsDir, runName: name, device: 'cpu' },
  extra,
];

/** What must be identical between two runs of one seed: everything but times and paths. */
function numbers(summary: TrainSummary, events: TrainEvent[]) {
  const noTime = <T extends { seconds: number } | null>(r: T) => (r === null ? null : { ...r, seconds: 0 });
  return {
    summary: { ...summary, seconds: 0, best: noTime(summary.best), last: noTime(summary.last), test: noTime(summary.test), lastCheckpoint: null, bestCheckpoint: null },
    // Every loss of every step and every evaluation, bit for bit.
    steps: events.flatMap((e) => (e.type === 'step' ? [[e.loss, e.parts]] : [])),
    evals: events.flatMap((e) => (e.type === 'eval' ? [{ ...e, seconds: 0 }] : [])),
  };
}

const configThreads = (runDir: string): unknown => JSON.parse(readFileSync(path.join(runDir, 'config.json'), 'utf8')).native.threads;

test.serial('bad isolate and threads options are rejected before any work, naming the option', async (t) => {
  const over = Number.MAX_SAFE_INTEGER;
  await t.throwsAsync(train({ overrides: tiny('bad-threads'), isolate: true, threads: over }), { code: 'ERR_INVALID_CONFIG', message: /^options\.threads: expected an integer from 1 to \d+ \(this machine's cores\)/ });
  await t.throwsAsync(train({ overrides: tiny('bad-threads'), threads: over }), { code: 'ERR_INVALID_CONFIG', message: /^options\.threads:/ });
  await t.throwsAsync(train({ overrides: tiny('bad-threads'), isolate: 'yes' as never }), { code: 'ERR_INVALID_CONFIG', message: /^options\.isolate:/ });
  const config = resolveConfig({ overrides: tiny('bad-threads') });
  await t.throwsAsync(runIsolated(config, { abortGraceMs: -1 }), { code: 'ERR_INVALID_CONFIG', message: /^options\.abortGraceMs: expected a number of milliseconds >= 0, got -1/ });
  t.false(existsSync(path.join(runsDir, 'bad-threads')));
  t.is(isolatedThreads(1), Math.max(1, availableParallelism()));
  t.is(isolatedThreads(1000), 1);
});

test.serial('isolated runs reproduce in-process runs exactly, alone and two at a time', async (t) => {
  // The share two concurrent runs get by default; the solo references use it too
  // (libtorch's reductions may depend on the thread count).
  const share = isolatedThreads(2);
  const solo = async (seed: number, isolate: boolean) => {
    const events: TrainEvent[] = [];
    const r = await train({ overrides: tiny(`solo-${seed}-${isolate}`, { seed }), isolate, threads: share, onEvent: (e) => void events.push(e) });
    return { r, events };
  };
  const inProcess = await solo(0, false);
  const isolated1 = await solo(1, true);

  const ev0: TrainEvent[] = [];
  const ev1: TrainEvent[] = [];
  const [c0, c1] = await Promise.all([
    train({ overrides: tiny('pair-0', { seed: 0 }), isolate: true, onEvent: (e) => void ev0.push(e) }),
    train({ overrides: tiny('pair-1', { seed: 1 }), isolate: true, onEvent: (e) => void ev1.push(e) }),
  ]);
  t.is(c0.summary.status, 'completed');
  t.true(ev0.some((e) => e.type === 'step') && ev0.at(-1)?.type === 'done');
  // Concurrent children split the cores instead of each taking them all.
  t.is(configThreads(c0.runDir), share);
  t.is(configThreads(c1.runDir), share);
  t.deepEqual(numbers(c0.summary, ev0), numbers(inProcess.r.summary, inProcess.events));
  t.deepEqual(numbers(c1.summary, ev1), numbers(isolated1.r.summary, isolated1.events));
  // The two seeds differ: the comparisons above could not pass by accident.
  t.notDeepEqual(numbers(c0.summary, ev0).steps, numbers(c1.summary, ev1).steps);
  // The event stream is the in-process one, and the run folder is the same as in-process.
  // evalProgress is throttled by wall time (one a second), so how many arrive
  // depends on the machine's load, not on isolation: compared without them.
  const kinds = (events: TrainEvent[]) => events.map((e) => e.type).filter((type) => type !== 'evalProgress');
  t.deepEqual(kinds(ev0), kinds(inProcess.events));
  t.is(readFileSync(path.join(c0.runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').length, ev0.length);
  t.deepEqual(JSON.parse(readFileSync(path.join(c0.runDir, 'summary.json'), 'utf8')).status, 'completed');
  t.true(existsSync(c0.summary.bestCheckpoint!));
});

test.serial('a child killed with SIGKILL mid-run rejects with ERR_CHILD_DIED; this process goes on', async (t) => {
  const config = resolveConfig({ overrides: tiny('killed', { epochs: 1000 }) });
  let pid: number | undefined;
  let runDir: string | undefined;
  let killed = false;
  const err = await t.throwsAsync(
    runIsolated(config, {
      onChildPid: (p) => (pid = p),
      onRunDir: (d) => (runDir = d),
      onEvent: (e) => {
        if (e.type === 'step' && !killed) {
          killed = true;
          process.kill(pid!, 'SIGKILL');
        }
      },
    }),
    { instanceOf: IsolatedRunError },
  );
  t.is(err!.code, 'ERR_CHILD_DIED');
  t.is(err!.signal, 'SIGKILL');
  t.is(err!.exitCode, null);
  t.is(err!.runDir, runDir!);
  t.regex(err!.message, /killed by SIGKILL/);
  t.true(err!.message.includes(runDir!), err!.message);
  // The run folder records the failure, so a sweep does not take it for finished or running.
  t.like(JSON.parse(readFileSync(path.join(runDir!, 'summary.json'), 'utf8')), { status: 'failed', code: 'ERR_CHILD_DIED' });
  t.throws(() => process.kill(pid!, 0), { code: 'ESRCH' });
});

test.serial('abort stops the child cleanly: cancelled, checkpoint saved; a failing handler fails the run', async (t) => {
  const ac = new AbortController();
  let steps = 0;
  const { summary } = await train({
    overrides: tiny('abort', { epochs: 1000 }),
    isolate: true,
    signal: ac.signal,
    onEvent: (e) => {
      if (e.type === 'step') steps += 1;
      ac.abort();
    },
  });
  t.is(summary.status, 'cancelled');
  t.true(summary.lastCheckpoint!.endsWith('interrupted.safetensors'));
  t.true(existsSync(summary.lastCheckpoint!));
  // Events in flight when the abort reached the child: a handful of steps at most.
  t.true(steps <= 3, `${steps} steps`);

  // Aborted before the call: rejects with the reason and starts nothing, as in-process.
  // (A DOMException, which ava's throwsAsync does not take for an Error.)
  const early: unknown = await train({ overrides: tiny('never'), isolate: true, signal: AbortSignal.abort() }).then(
    () => null,
    (e: unknown) => e,
  );
  t.is((early as DOMException | null)?.name, 'AbortError');
  t.false(existsSync(path.join(runsDir, 'never')));

  // The caller's handler throws: the run fails with that very error, as in-process.
  const boom = new Error('handler says no');
  const e = await t.throwsAsync(
    train({
      overrides: tiny('handler', { epochs: 1000 }),
      isolate: true,
      onEvent: (ev) => {
        if (ev.type === 'step') throw boom;
      },
    }),
  );
  t.is(e, boom);
  t.is((e as Error & { runDir?: string }).runDir, path.join(runsDir, 'handler'));
  t.like(JSON.parse(readFileSync(path.join(runsDir, 'handler', 'summary.json'), 'utf8')), { status: 'failed', error: 'handler says no' });

  // Even on the last event, when the child has already finished: failed, as in-process.
  const late = new Error('not the done event');
  const e2 = await t.throwsAsync(
    train({
      overrides: tiny('late'),
      isolate: true,
      onEvent: async (ev) => {
        if (ev.type === 'done') throw late;
      },
    }),
  );
  t.is(e2, late);
  t.like(JSON.parse(readFileSync(path.join(runsDir, 'late', 'summary.json'), 'utf8')), { status: 'failed', error: 'not the done event' });
});

test.serial('no child outlives its parent, whether the parent exits or is killed', async (t) => {
  const index = fileURLToPath(import.meta.resolve('st-native'));
  // A parent that starts a long isolated run and, at its first step, prints the child's pid and then exits or waits to be killed.
  const parent = (mode: 'exit' | 'wait') => `
    import { resolveConfig, runIsolated } from ${JSON.stringify(index)};
    const config = resolveConfig({ overrides: ${JSON.stringify(tiny(`orphan-${mode}`, { epochs: 1000 }))} });
    let pid;
    runIsolated(config, { onChildPid: (p) => (pid = p), onEvent: (e) => {
      if (e.type !== 'step') return;
      console.log(pid);
      if (${JSON.stringify(mode)} === 'exit') process.exit(0);
    } });`;
  // A zombie waiting for a reaper counts as gone: it runs nothing any more.
  const alive = (pid: number) => {
    try {
      return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
    } catch {
      return false;
    }
  };
  const gone = async (pid: number, ms: number) => {
    for (const until = Date.now() + ms; Date.now() < until; ) {
      if (!alive(pid)) return true;
      await new Promise((r) => setTimeout(r, 100));
    }
    return !alive(pid);
  };

  // process.exit() in the parent: the child is killed in its 'exit' hook.
  const out = await new Promise<string>((resolve, reject) =>
    execFile(process.execPath, ['--input-type=module', '-e', parent('exit')], (e, stdout) => (e ? reject(e) : resolve(stdout))),
  );
  const child1 = Number(out.trim());
  t.true(child1 > 0, out);
  t.true(await gone(child1, 5000), `child ${child1} outlived its exited parent`);

  // The parent killed outright (no hook runs): the child sees its channel close and stops itself.
  const proc = execFile(process.execPath, ['--input-type=module', '-e', parent('wait')]);
  const child2 = await new Promise<number>((resolve) => proc.stdout!.once('data', (d: Buffer) => resolve(Number(String(d).trim()))));
  proc.kill('SIGKILL');
  t.true(child2 > 0);
  t.true(await gone(child2, 20_000), `child ${child2} outlived its killed parent`);
});
