/**
 * Training runs on native threads: in-process, the event loop stays free.
 * A 20 ms timer must keep firing at its rate during a tiny run, from the
 * run's first event to its last.
 */
import test from 'ava';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { resolveConfig } from '../ts/config/resolve.js';
import { runExperiment } from '../ts/experiment/run.js';
import { tiny } from './helpers/tiny.js';

test('a timer keeps firing at its rate while a run trains', async (t) => {
  const runsDir = mkdtempSync(path.join(tmpdir(), 'st-event-loop-'));
  // Two epochs of the tiny run: long enough to measure (a few seconds), short enough for the suite.
  const config = resolveConfig({ overrides: [...tiny(runsDir), { epochs: 2 }] });
  const period = 20;
  const ticks: number[] = [];
  let started = 0;
  let ended = 0;
  const timer = setInterval(() => ticks.push(performance.now()), period);
  try {
    const r = await runExperiment(config, {
      onEvent: (e) => {
        if (e.type === 'start') started = performance.now();
        if (e.type === 'done') ended = performance.now();
      },
    });
    t.is(r.summary.status, 'completed');
  } finally {
    clearInterval(timer);
  }
  const during = ticks.filter((x) => x >= started && x <= ended);
  const span = ended - started;
  t.true(span > 500, `the run took ${span.toFixed(0)} ms: too short to measure`);
  const gaps = during.slice(1).map((x, i) => x - during[i]!);
  const longest = Math.max(...gaps);
  // On a loaded 2-core machine a timer may slip, but a blocked loop would
  // show one gap as long as the training itself.
  t.true(during.length >= (0.5 * span) / period, `${during.length} ticks in ${span.toFixed(0)} ms (expected about ${(span / period).toFixed(0)})`);
  t.true(longest < 250, `the longest gap between ticks was ${longest.toFixed(0)} ms`);
  t.log(`${during.length} ticks in ${span.toFixed(0)} ms, longest gap ${longest.toFixed(0)} ms`);
});
