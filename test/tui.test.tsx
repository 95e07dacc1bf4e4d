import test, { type ExecutionContext } from 'ava';
import React from 'react';
import { render } from 'ink-testing-library';
import type { TrainEvent } from '../ts/native-types.js';
import { App, initialState, pendingRow, reduce, runEtaSeconds, settledRows, TrainStore, TrainView, type TrainViewState } from '../ts/tui/index.js';
import { PlainPrinter } from '../ts/cli/plain.js';

const events: TrainEvent[] = [
  { type: 'start', model: 'small_cnn', parameters: 312202, device: 'cpu (2 threads)', method: 'st', trainSize: 6400, testSize: 1000, epochs: 3, stepsPerEpoch: 100, startEpoch: 1 },
  { type: 'step', epoch: 1, step: 100, stepsPerEpoch: 100, lr: 0.03, loss: 1.5, parts: { ceAdv: 1.25, ceBenign: 1.0, ceCol: 0.75, reg: 0.1 }, imagesPerSec: 200, elapsedSec: 32 },
  { type: 'epoch', epoch: 1, loss: 1.5, parts: { ceAdv: 1.25, ceBenign: 1.0, ceCol: 0.75, reg: 0.1 }, trainAcc: 0.7, seconds: 32, imagesPerSec: 200 },
  { type: 'eval', epoch: 1, split: 'test', cleanAcc: 0.913, robustAcc: 0.642, attack: 'pgd-20', samples: 1000, seconds: 10 },
  { type: 'checkpoint', epoch: 1, kind: 'last', path: '/r/checkpoints/last.safetensors' },
  { type: 'checkpoint', epoch: 1, kind: 'best', path: '/r/checkpoints/best.safetensors' },
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
  t.true(s.rows[0]!.best);
  t.is(s.epoch, 2);
  t.is(s.parts.ceCol, 0.321);
  // 75% of 6400 images left at 256 img/s, + this epoch's eval, + one more epoch and eval.
  t.is(Math.round(runEtaSeconds(s)!), Math.round(4800 / 256 + 10 + (6400 / 256 + 10)));
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
    { type: 'checkpoint', epoch: 2, kind: 'last', path: '/r/checkpoints/last.safetensors' },
    { type: 'done', status: 'completed', epochsCompleted: 2, selectedOn: 'test', best: null, last: null, test: null, lastCheckpoint: null, bestCheckpoint: null, seconds: 90 },
  ]);
  t.deepEqual(settledRows(s).map((r) => [r.epoch, Boolean(r.best)]), [[1, true], [2, false]]);
  t.is(s.bestEpoch, 1);
  const frame = render(<TrainView state={s} />).lastFrame() ?? '';
  t.regex(frame, /2\s+95\.0%\s+60\.0%/);
  t.notRegex(frame, /batch/, 'the live region is gone once the run is done');
});

test('a cancelled evaluation still leaves its epoch in the table at the end', (t) => {
  const s = fold([
    events[0]!,
    events[2]!,
    { type: 'checkpoint', epoch: 1, kind: 'interrupted', path: '/r/checkpoints/interrupted.safetensors' },
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
