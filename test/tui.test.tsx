import test, { type ExecutionContext } from 'ava';
import { EventEmitter } from 'node:events';
import React from 'react';
import { render as inkRender } from 'ink';
import { render as renderInk } from 'ink-testing-library';
import type { TrainEvent } from '../ts/native-types.js';
import { App, initialState, pendingRow, reduce, runEtaSeconds, settledRows, TrainStore, TrainView, type TrainViewState } from '../ts/tui/index.js';

/** ink-testing-library's render; its frames read the no-break spaces that bind a label to its value as spaces. */
const render = (tree: React.ReactElement) => {
  const r = renderInk(tree);
  return { ...r, lastFrame: () => r.lastFrame()?.replace(/\u00a0/g, ' ') };
};
import { PlainPrinter } from '../ts/cli/plain.js';

const events: TrainEvent[] = [
  { type: 'start', model: 'small_cnn', parameters: 312202, device: 'cpu (2 threads)', method: 'st', trainSize: 6400, testSize: 1000, epochs: 3, stepsPerEpoch: 100, startEpoch: 1, evalEpochs: [1, 2, 3], finalTestSize: null },
  { type: 'step', epoch: 1, step: 100, stepsPerEpoch: 100, lr: 0.03, loss: 1.5, parts: { ceAdv: 1.25, ceBenign: 1.0, ceCol: 0.75, reg: 0.1 }, imagesPerSec: 200, elapsedSec: 32 },
  { type: 'epoch', epoch: 1, loss: 1.5, parts: { ceAdv: 1.25, ceBenign: 1.0, ceCol: 0.75, reg: 0.1 }, trainAcc: 0.7, seconds: 32, imagesPerSec: 200 },
  { type: 'eval', epoch: 1, split: 'test', cleanAcc: 0.913, robustAcc: 0.642, attack: 'pgd-20', samples: 1000, seconds: 10 },
  { type: 'checkpoint', epoch: 1, kind: 'last', path: '/r/checkpoints/last.safetensors', tied: false },
  { type: 'checkpoint', epoch: 1, kind: 'best', path: '/r/checkpoints/best.safetensors', tied: false },
  { type: 'step', epoch: 2, step: 25, stepsPerEpoch: 100, lr: 0.03, loss: 1.1, parts: { ceAdv: 0.987, ceBenign: 0.654, ceCol: 0.321, reg: 0.2468 }, imagesPerSec: 256, elapsedSec: 50 },
];

const fold = (evs: TrainEvent[]): TrainViewState => evs.reduce(reduce, initialState);

/**
 * Mounts the App on a fresh store, unmounting even when an assertion fails
 * (or the App's clock keeps the worker alive).
 */
function mountApp(t: ExecutionContext, tickMs: number) {
  const store = new TrainStore(10);
  const { lastFrame, unmount } = render(<App store={store} tickMs={tickMs} />);
  t.teardown(() => {
    unmount();
    store.dispose();
  });
  return { store, lastFrame };
}

test('the reducer folds events into rows, the best marker and live numbers', (t) => {
  const s = fold(events);
  t.is(s.rows.length, 1);
  t.is(s.rows[0]!.eval?.robustAcc, 0.642);
  t.is(s.rows[0]!.best, 'new');
  t.is(s.epoch, 2);
  t.is(s.parts.ceCol, 0.321);
  // 75% of 6400 images left at 256 img/s, + this epoch's eval (1000 images at
  // 10 s per 1000), + one more epoch as long as the first (32 s) and its eval.
  t.is(runEtaSeconds(s), 4800 / 256 + 10 + (32 + 10));
});

test('the dashboard shows the epoch table and the live losses, speed and ETA', (t) => {
  const { lastFrame } = render(<TrainView state={fold(events)} />);
  const frame = lastFrame() ?? '';
  t.regex(frame, /epoch\s+clean\s+pgd-20/);
  t.regex(frame, /1\s+91\.3%\s+64\.2%/);
  t.regex(frame, /1\s+91\.3%\s+64\.2%.*★ new best/);
  t.regex(frame, /lr 0\.03$/m);
  t.regex(frame, /CE adv 0\.987 · benign 0\.654 · col 0\.321 · reg 0\.2468/);
  t.regex(frame, /256 img\/s · epoch ETA 00:19/);
  t.regex(frame, /epoch [█░]+ 2\/3/);
  t.regex(frame, /batch [█░]+ 25\/100/);
});

test('the app redraws as events arrive through the store', async (t) => {
  const { store, lastFrame } = mountApp(t, 50);
  store.push(events[0]!);
  store.push(events[1]!);
  await new Promise((r) => setTimeout(r, 60));
  t.regex(lastFrame() ?? '', /batch [█░]+ 100\/100/);
  for (const e of events.slice(2)) store.push(e);
  await new Promise((r) => setTimeout(r, 60));
  t.regex(lastFrame() ?? '', /batch [█░]+ 25\/100/);
});

test('plain output prints one line per epoch, eval and checkpoint and throttles steps', (t) => {
  const lines: string[] = [];
  const p = new PlainPrinter((l) => lines.push(l), 60_000);
  for (const e of events) p.push(e);
  p.push({ ...(events[6] as Extract<TrainEvent, { type: 'step' }>), step: 26 });
  t.regex(lines[0]!, /^start: st on small_cnn \(312,202 params\)/);
  t.true(lines.some((l) => /^epoch 1 test \(1000\): clean 91\.3%, pgd-20 64\.2%/.test(l)));
  t.true(lines.some((l) => l === 'checkpoint (best): /r/checkpoints/best.safetensors'));
  // Step lines: the first one and the epoch's last one; step 25 and 26 are within the interval.
  t.is(lines.filter((l) => l.startsWith('epoch 1/3 step') || l.startsWith('epoch 2/3 step')).length, 1);
});

test('with validation-based selection, the final test result is shown apart from the epoch rows', (t) => {
  const val = events.map((e) => (e.type === 'eval' ? { ...e, split: 'validation' as const } : e));
  const s = fold([...val, { type: 'eval', epoch: 1, split: 'test', cleanAcc: 0.9, robustAcc: 0.6, attack: 'pgd-20', samples: 2000, seconds: 20 }]);
  t.is(s.rows[0]!.eval?.split, 'validation');
  t.is(s.finalTest?.robustAcc, 0.6);
  const frame = render(<TrainView state={s} />).lastFrame() ?? '';
  t.regex(frame, /per-epoch accuracy on the validation split/);
  t.regex(frame, /best checkpoint \(epoch 1\) on test: clean 90\.0%, pgd-20 60\.0%/);
});

const tick = (ms = 25) => new Promise((r) => setTimeout(r, ms));

// The native loop sends an epoch's `eval` before it writes the checkpoints, and
// each event arrives in its own turn of the event loop. <Static> prints a row
// once, so a row printed on `eval` would never get its best marker.
test('the best marker reaches the printed table when events arrive one tick apart', async (t) => {
  const { store, lastFrame } = mountApp(t, 1000);
  for (const e of events.slice(0, 4)) {
    store.push(e);
    await tick();
  }
  // Evaluated, checkpoints not yet written: the row is shown live, not yet printed.
  const s = store.getState();
  t.is(settledRows(s).length, 0);
  t.is(pendingRow(s)?.epoch, 1);
  t.regex(lastFrame() ?? '', /1\s+91\.3%\s+64\.2%/);
  for (const e of events.slice(4)) {
    store.push(e);
    await tick();
  }
  const frame = lastFrame() ?? '';
  t.regex(frame, /1\s+91\.3%\s+64\.2%.*★ new best/);
  t.is(frame.match(/91\.3%/g)?.length, 1, 'the row is printed once');
  t.regex(frame, /batch [█░]+ 25\/100/);
});

test('a later, worse epoch gets no marker and earlier markers stay', (t) => {
  const s = fold([
    ...events,
    { type: 'epoch', epoch: 2, loss: 1, parts: {}, trainAcc: 0.8, seconds: 30, imagesPerSec: 210 },
    { type: 'eval', epoch: 2, split: 'test', cleanAcc: 0.95, robustAcc: 0.6, attack: 'pgd-20', samples: 1000, seconds: 10 },
    { type: 'checkpoint', epoch: 2, kind: 'last', path: '/r/checkpoints/last.safetensors', tied: false },
    { type: 'done', status: 'completed', epochsCompleted: 2, selectedOn: 'test', best: null, last: null, test: null, lastCheckpoint: null, bestCheckpoint: null, seconds: 90 },
  ]);
  t.deepEqual(settledRows(s).map((r) => [r.epoch, r.best ?? 'none']), [[1, 'new'], [2, 'none']]);
  t.is(s.bestEpoch, 1);
  const frame = render(<TrainView state={s} />).lastFrame() ?? '';
  t.regex(frame, /2\s+95\.0%\s+60\.0%/);
  t.notRegex(frame, /batch/, 'the live region is gone once the run is done');
});

test('a cancelled evaluation still leaves its epoch in the table at the end', (t) => {
  const s = fold([
    events[0]!,
    events[2]!,
    { type: 'checkpoint', epoch: 1, kind: 'interrupted', path: '/r/checkpoints/interrupted.safetensors', tied: false },
    { type: 'done', status: 'cancelled', epochsCompleted: 0, selectedOn: 'test', best: null, last: null, test: null, lastCheckpoint: '/r/checkpoints/interrupted.safetensors', bestCheckpoint: null, seconds: 40 },
  ]);
  t.deepEqual(settledRows(s).map((r) => r.epoch), [1]);
  t.regex(render(<TrainView state={s} />).lastFrame() ?? '', /1\s+-\s+-\s+1\.500\s+70\.0%/);
});

test('the first Ctrl-C shows in the dashboard', async (t) => {
  const { store, lastFrame } = mountApp(t, 1000);
  store.push(events[0]!);
  store.markStopping();
  await tick();
  t.regex(lastFrame() ?? '', /stopping after this step and saving checkpoints\/interrupted\.safetensors/);
});

test('step ticks are coalesced to one redraw per interval; other events redraw at once', async (t) => {
  const store = new TrainStore(50);
  let redraws = 0;
  store.subscribe(() => {
    redraws += 1;
  });
  store.push(events[0]!);
  t.is(redraws, 1);
  for (let i = 1; i <= 20; i++) store.push({ ...(events[1] as Extract<TrainEvent, { type: 'step' }>), step: i });
  t.is(redraws, 1, 'steps within the interval wait');
  await tick(80);
  t.is(redraws, 2, 'one redraw for twenty steps');
  t.is(store.getState().step, 20);
  store.push(events[2]!);
  t.is(redraws, 3);
  store.dispose();
});

// Epoch 2 trained (30 s) and its evaluation 400 images in, at 4 s.
const epoch2 = events[6] as Extract<TrainEvent, { type: 'step' }>;
const evaluating: TrainEvent[] = [
  ...events,
  { ...epoch2, step: 100 },
  { type: 'epoch', epoch: 2, loss: 1, parts: {}, trainAcc: 0.8, seconds: 30, imagesPerSec: 213 },
  { type: 'evalProgress', phase: 'epoch', epoch: 2, split: 'test', done: 0, total: 1000, elapsedSec: 0 },
  { type: 'evalProgress', phase: 'epoch', epoch: 2, split: 'test', done: 400, total: 1000, elapsedSec: 4 },
];

test('while evaluating, the dashboard shows an evaluation bar with counts and its own ETA', (t) => {
  const s = fold(evaluating);
  t.is(s.phase, 'evaluating');
  const frame = render(<TrainView state={s} />).lastFrame() ?? '';
  // 600 images left at this evaluation's pace (4 s per 400).
  t.regex(frame, /eval {2}[█░]+ 400\/1000 · ETA 00:06/);
  t.notRegex(frame, /epoch ETA/, 'no frozen epoch ETA while evaluating');
  // This evaluation's 6 s, epoch 3 as long as epoch 2 (30 s), and its evaluation (10 s).
  t.regex(frame, /run ETA 00:46/);
  t.is(runEtaSeconds(s), 6 + 30 + 10);
  // Its result clears the bar.
  const after = fold([...evaluating, { type: 'eval', epoch: 2, split: 'test', cleanAcc: 0.9, robustAcc: 0.6, attack: 'pgd-20', samples: 1000, seconds: 10 }]);
  t.is(after.evalProgress, undefined);
  t.notRegex(render(<TrainView state={after} />).lastFrame() ?? '', /eval {2}[█░]/);
});

test('the ETAs count down with the clock between events, never standing still', (t) => {
  const s = { ...fold(evaluating), updatedAtMs: 1_000_000 };
  const at = (sec: number) => 1_000_000 + sec * 1000;
  t.is(runEtaSeconds(s, at(0)), 46);
  t.is(runEtaSeconds(s, at(2)), 44);
  const frame = render(<TrainView state={s} nowMs={at(2)} />).lastFrame() ?? '';
  t.regex(frame, /400\/1000 · ETA 00:04/);
  t.regex(frame, /run ETA 00:44/);
  // While training too: the step's 18.75 s left count down.
  const training = { ...fold(events), updatedAtMs: 1_000_000 };
  t.is(runEtaSeconds(training, at(5))! - runEtaSeconds(training, at(0))!, -5);
});

test('before any evaluation is timed, the run ETA is a lower bound, then the first batch times it', (t) => {
  const first = fold([events[0]!, events[1]!]);
  t.regex(render(<TrainView state={first} />).lastFrame() ?? '', /run ETA ≥/);
  t.is(runEtaSeconds(first), undefined);
  const timed = fold([events[0]!, events[1]!, events[2]!, { type: 'evalProgress', phase: 'epoch', epoch: 1, split: 'test', done: 250, total: 1000, elapsedSec: 5 }]);
  // 750 images at 20 ms, then two epochs of 32 s with evaluations of 20 s.
  t.is(runEtaSeconds(timed), 15 + 2 * (32 + 20));
});

test('the final test shows its own bar; a tie is marked as a tie, not a new best', (t) => {
  const s = fold([
    ...events.map((e) => (e.type === 'eval' ? { ...e, split: 'validation' as const } : e)),
    { ...epoch2, step: 100 },
    { type: 'epoch', epoch: 2, loss: 1, parts: {}, trainAcc: 0.8, seconds: 30, imagesPerSec: 213 },
    { type: 'eval', epoch: 2, split: 'validation', cleanAcc: 0.95, robustAcc: 0.642, attack: 'pgd-20', samples: 1000, seconds: 10 },
    { type: 'checkpoint', epoch: 2, kind: 'last', path: '/r/checkpoints/last.safetensors', tied: false },
    { type: 'checkpoint', epoch: 2, kind: 'best', path: '/r/checkpoints/best.safetensors', tied: true },
    { type: 'evalProgress', phase: 'finalTest', epoch: 2, split: 'test', done: 200, total: 1000, elapsedSec: 2 },
  ]);
  t.deepEqual(s.rows.map((r) => r.best), ['new', 'tied']);
  t.is(s.bestEpoch, 2);
  t.is(s.phase, 'testing');
  const frame = render(<TrainView state={s} />).lastFrame() ?? '';
  t.regex(frame, /2\s+95\.0%\s+64\.2%.*tied best/);
  t.is(frame.match(/new best/g)?.length, 1);
  t.regex(frame, /test {2}[█░]+ 200\/1000 · ETA 00:08/);
  const lines: string[] = [];
  const p = new PlainPrinter((l) => lines.push(l));
  p.push({ type: 'checkpoint', epoch: 2, kind: 'best', path: '/r/b.safetensors', tied: true });
  t.deepEqual(lines, ['checkpoint (best, tied): /r/b.safetensors']);
});

test('plain output prints evaluation progress at most once per interval', (t) => {
  let now = 0;
  const lines: string[] = [];
  const p = new PlainPrinter((l) => lines.push(l), 5000, () => now);
  const progress = (done: number, phase: 'epoch' | 'finalTest' = 'epoch'): TrainEvent => ({ type: 'evalProgress', phase, epoch: 2, split: 'test', done, total: 1000, elapsedSec: now / 1000 });
  for (const e of evaluating.slice(0, -2)) p.push(e);
  const before = lines.length;
  for (const [ms, done] of [[0, 0], [1000, 100], [4999, 400], [5000, 500], [6000, 600], [9999, 900], [10_000, 990], [10_500, 1000]] as const) {
    now = ms;
    p.push(progress(done));
  }
  t.deepEqual(lines.slice(before), [
    'epoch 2 test: 500/1000 images in 00:05 · ETA 00:05 · run ETA 00:45',
    'epoch 2 test: 990/1000 images in 00:10 · ETA 00:00 · run ETA 00:40',
  ]);
  now = 20_000;
  p.push(progress(0, 'finalTest'));
  t.is(lines.at(-1), 'final test of the best checkpoint (epoch 2) on 1000 test images…');
});

test('the store stamps events with its clock and coalesces evaluation progress like steps', async (t) => {
  let now = 5;
  const store = new TrainStore(50, () => now);
  let redraws = 0;
  store.subscribe(() => {
    redraws += 1;
  });
  for (const e of evaluating.slice(0, -2)) store.push(e);
  const base = redraws;
  now = 42;
  for (let done = 0; done <= 500; done += 100) store.push({ type: 'evalProgress', phase: 'epoch', epoch: 2, split: 'test', done, total: 1000, elapsedSec: done / 100 });
  t.is(store.getState().updatedAtMs, 42);
  t.is(store.getState().evalProgress?.done, 500);
  t.true(redraws - base <= 1, 'at most the first redraws at once');
  await tick(80);
  t.true(redraws - base >= 1 && redraws - base <= 2, `${redraws - base} redraws`);
  store.dispose();
});

/** Renders `node` once on a terminal `columns` wide; returns the frame without colours. */
function renderAt(columns: number, node: React.ReactElement): string {
  const frames: string[] = [];
  const stdout = Object.assign(new EventEmitter(), { columns, isTTY: true, write: (f: string) => frames.push(f) > 0 });
  const stdin = Object.assign(new EventEmitter(), { isTTY: false, setRawMode() {}, setEncoding() {}, resume() {}, pause() {}, ref() {}, unref() {}, read: () => null });
  const app = inkRender(node, {
    stdout: stdout as unknown as NodeJS.WriteStream,
    stderr: stdout as unknown as NodeJS.WriteStream,
    stdin: stdin as unknown as NodeJS.ReadStream,
    debug: true,
    exitOnCtrlC: false,
    patchConsole: false,
  });
  const frame = frames.at(-1) ?? '';
  app.unmount();
  // eslint-disable-next-line no-control-regex
  return frame.replace(/\u001b\[[0-9;]*m/g, '');
}

test('at 60 columns every line fits and text wraps between words, never inside one', (t) => {
  const s: TrainViewState = {
    ...fold([
      { ...(events[0] as Extract<TrainEvent, { type: 'start' }>), method: 'collaborative', model: 'resnet18', parameters: 11_173_962, device: 'cuda:0 (NVIDIA H200, 139 GiB, compute 9.0)', finalTestSize: 10000 },
      ...evaluating.slice(1, -1).map((e) => (e.type === 'eval' ? { ...e, split: 'validation' as const } : e)),
      { type: 'evalProgress', phase: 'epoch', epoch: 2, split: 'validation', done: 4000, total: 10000, elapsedSec: 3725 },
    ]),
    stopping: true,
    finalTest: { epoch: 1, split: 'test', cleanAcc: 0.9, robustAcc: 0.6, attack: 'pgd-20', samples: 10000, seconds: 20 },
  };
  const narrow = renderAt(60, <TrainView state={s} />);
  const wide = renderAt(300, <TrainView state={s} />);
  const lines = narrow.split('\n');
  for (const line of lines) t.true(line.length <= 60, `${line.length} columns: ${line}`);
  t.true(wide.split('\n').some((l) => l.length > 60), 'the wide frame has long lines, so the narrow one did wrap');
  // Wrapping only moves line breaks: the same words in the same order.
  const words = (frame: string) => frame.split(/\s+/).filter(Boolean);
  t.deepEqual(words(narrow), words(wide));
  t.regex(narrow, /stopping after this evaluation batch/);
  t.regex(narrow, /4000\/10000 ·\s+ETA\s+1:33:08/);
  // A label never ends a line apart from its value.
  t.notRegex(narrow, /(ETA|loss|reg|col|benign|adv|elapsed)\s*$/m);
});
