// Progress inside a batch (`progress` events): the plain printer's bounded
// rate and the terminal view of a mid-stage event. Pure: no native work.
import test from 'ava';
import React from 'react';
import { render } from 'ink-testing-library';
import type { EvalEvent } from 'st-native';
import { overall, reduceEval, rowTiming, type EvalViewState } from '../ts/cli/eval-state.js';
import { EvalRows } from '../ts/cli/eval-view.js';
import { PLAIN_PROGRESS_EVERY_MS, PlainEvalPrinter } from '../ts/cli/eval-progress.js';

const start: EvalEvent = { type: 'start', attacks: ['pgd20', 'aa'], samples: 100, batchSize: 100, device: 'cpu', checkpointCrc32: '0badf00d', verified: true };
const stage: EvalEvent = { type: 'stage', attack: 'aa', index: 1, stage: 'apgd-t', stageIndex: 1, stages: 4, points: 60, robust: 60, samples: 100 };
const progress = (done: number, seconds: number, attackSeconds = seconds): EvalEvent => ({ type: 'progress', attack: 'aa', index: 1, stage: 'apgd-t', done, total: 60, seconds, attackSeconds });
const pgdDone: EvalEvent = {
  type: 'attack',
  name: 'pgd20',
  spec: { kind: 'pgd', name: 'pgd20', norm: 'linf', epsilon: 0.03, stepSize: 0.008, steps: 20, restarts: 1, randomStart: true, keep: 'best' },
  accuracy: 0.6,
  correct: 60,
  samples: 100,
  batchSize: 100,
  seed: 0,
  maxPerturbation: 0.03,
  seconds: 30,
  stages: null,
  resumed: false,
};

test('the plain printer prints progress at a bounded rate, not per event', (t) => {
  let clock = 0;
  const lines: string[] = [];
  const p = new PlainEvalPrinter((l) => lines.push(l), 20_000, () => clock);
  p.push(start);
  p.push(stage);
  const before = lines.length;
  // One event a second for two minutes: a line every 20 s, no more.
  for (let s = 1; s <= 120; s++) {
    clock = s * 1000;
    p.push(progress(s * 0.4, s));
  }
  const progressLines = lines.slice(before);
  t.is(progressLines.length, 6);
  // Each with the stage, the images done, and the stage's elapsed time and ETA from its rate.
  t.is(progressLines[0], 'aa: apgd-t 2/4, 8/60 images (13%); 00:20 elapsed, ETA 02:10 (00:20 in all)');
  t.regex(progressLines.at(-1)!, /^aa: apgd-t 2\/4, 48\/60 images \(80%\); 02:00 elapsed, ETA 00:30 \(02:00 in all\)$/);
  // Batch lines share the same budget.
  clock = 121_000;
  p.push({ type: 'batch', attack: 'aa', index: 1, done: 50, total: 60, correct: 40 });
  t.is(lines.length, before + 6);
  // The default rate: at most one line in 10 to 30 s.
  t.true(PLAIN_PROGRESS_EVERY_MS >= 10_000 && PLAIN_PROGRESS_EVERY_MS <= 30_000);
  const q: string[] = [];
  clock = 0;
  const d = new PlainEvalPrinter((l) => q.push(l), undefined, () => clock);
  for (let s = 1; s <= 60; s++) {
    clock = s * 1000;
    d.push(progress(s * 0.5, s));
  }
  t.is(q.length, Math.floor(60_000 / PLAIN_PROGRESS_EVERY_MS));
});

test('the view moves the bar inside a stage, with the attack\'s and the evaluation\'s elapsed time and ETA', (t) => {
  let s: EvalViewState = { rows: [], samples: 0, device: '', crc: '', notices: [] };
  for (const e of [start, pgdDone, stage, progress(15, 45, 100)]) s = reduceEval(s, e);
  const aa = s.rows[1]!;
  t.like(aa, { done: 15, total: 60, elapsed: 45, attackElapsed: 100, stage: 'apgd-t 2/4', lastStage: false });
  // A quarter of the stage in 45 s: 135 s to go; later stages unknown, so the overall ETA is a lower bound.
  t.is(rowTiming(aa), ' · 00:45, ETA 02:15');
  t.deepEqual(overall(s), { elapsed: 130, eta: 135, atLeast: true });
  const { lastFrame, unmount } = render(React.createElement(EvalRows, { state: s }));
  t.teardown(unmount);
  const frame = lastFrame()!;
  t.regex(frame, /aa\s+apgd-t 2\/4 ████░{12} 15\/60 · 60\/100 robust so far · 00:45, ETA 02:15$/m);
  t.regex(frame, /pgd20\s+60\.0% \(60\/100\) in 00:30/);
  t.regex(frame, /in all: 02:10 elapsed, ETA ≥ 02:15 \(later attacks and stages not counted yet\)/);
  // The last stage of the last attack: the overall ETA is the stage's.
  s = reduceEval(s, { ...(stage as Extract<EvalEvent, { type: 'stage' }>), stage: 'square', stageIndex: 3, points: 40 });
  t.is(s.rows[1]!.elapsed, null);
  s = reduceEval(s, { type: 'progress', attack: 'aa', index: 1, stage: 'square', done: 30.5, total: 40, seconds: 61, attackSeconds: 400 });
  t.deepEqual(overall(s), { elapsed: 430, eta: (61 * 9.5) / 30.5, atLeast: false });
  t.regex(render(React.createElement(EvalRows, { state: s })).lastFrame()!, /square 4\/4 █+░+ 30\/40 · 60\/100 robust so far/);
});

test('a plain attack\'s bar moves before its first batch ends, without an accuracy yet', (t) => {
  let s: EvalViewState = { rows: [], samples: 0, device: '', crc: '', notices: [] };
  s = reduceEval(s, start);
  s = reduceEval(s, { type: 'progress', attack: 'pgd20', index: 0, stage: null, done: 50, total: 100, seconds: 20, attackSeconds: 20 });
  const frame = render(React.createElement(EvalRows, { state: s })).lastFrame()!;
  t.regex(frame, /pgd20\s+█{12}░{12} 50\/100 · 00:20, ETA 00:20$/m);
  t.notRegex(frame, /so far/);
  t.regex(frame, /in all: 00:20 elapsed, ETA ≥ 00:20/);
});
