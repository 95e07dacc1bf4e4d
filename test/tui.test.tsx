import test from 'ava';
import React from 'react';
import { render } from 'ink-testing-library';
import type { TrainEvent } from '../ts/native-types.js';
import { App, initialState, reduce, runEtaSeconds, TrainStore, TrainView, type TrainViewState } from '../ts/tui/index.js';
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
  t.regex(frame, /★ best/);
  t.regex(frame, /CE adv 0\.987 · benign 0\.654 · col 0\.321 · reg 0\.2468/);
  t.regex(frame, /256 img\/s · epoch ETA 00:19/);
  t.regex(frame, /epoch [█░]+ 2\/3/);
  t.regex(frame, /batch [█░]+ 25\/100/);
});

test('the app redraws as events arrive through the store', async (t) => {
  const store = new TrainStore(10);
  const { lastFrame, unmount } = render(<App store={store} tickMs={50} />);
  store.push(events[0]!);
  store.push(events[1]!);
  await new Promise((r) => setTimeout(r, 60));
  t.regex(lastFrame() ?? '', /batch [█░]+ 100\/100/);
  for (const e of events.slice(2)) store.push(e);
  await new Promise((r) => setTimeout(r, 60));
  t.regex(lastFrame() ?? '', /batch [█░]+ 25\/100/);
  unmount();
  store.dispose();
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
