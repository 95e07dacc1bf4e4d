/**
 * Weight averaging (`ema`) end to end on the real addon and a few embedded
 * MNIST digits: both weights evaluated each epoch, both checkpoints written,
 * selection by the average, and `evaluate` of `ema-best` replaying the
 * average's numbers exactly (README: "Weight averaging (EMA)").
 */
import test from 'ava';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { evaluate, train, type TrainEvent } from 'st-native';

const runsDir = mkdtempSync(path.join(tmpdir(), 'st-native-test-ema-'));

test.serial('a tiny run with ema writes ema-best/ema-last, selects by the average, and eval replays it', async (t) => {
  const events: TrainEvent[] = [];
  const { summary, runDir } = await train({
    overrides: [
      {
        dataset: { trainSize: 256, testSize: 64 },
        method: { name: 'natural' },
        epochs: 2,
        eval: { steps: 2, maxSamples: 64 },
        runsDir,
        runName: 'ema',
        device: 'cpu',
        ema: { decay: 0.9, warmupSteps: 2, evalWith: 'ema' },
      },
    ],
    onEvent: (e) => events.push(e),
  });
  t.is(summary.status, 'completed');
  const evals = events.flatMap((e) => (e.type === 'eval' ? [{ epoch: e.epoch, ema: e.ema === true }] : []));
  t.deepEqual(evals, [
    { epoch: 1, ema: false },
    { epoch: 1, ema: true },
    { epoch: 2, ema: false },
    { epoch: 2, ema: true },
  ]);
  for (const f of ['best', 'last', 'ema-best', 'ema-last']) t.true(existsSync(path.join(runDir, 'checkpoints', `${f}.safetensors`)), f);
  t.true(summary.bestCheckpoint!.endsWith('ema-best.safetensors'));
  const best = summary.best!;
  t.is(best.ema, true);
  const again = await evaluate({ runDir, checkpoint: 'ema-best' });
  t.deepEqual(
    { epoch: again.epoch, cleanAcc: again.cleanAcc, robustAcc: again.robustAcc, samples: again.samples },
    { epoch: best.epoch, cleanAcc: best.cleanAcc, robustAcc: best.robustAcc, samples: best.samples },
  );
  // The raw weights of the same epoch replay the raw evaluation.
  const raw = events.find((e) => e.type === 'eval' && e.epoch === best.epoch && e.ema !== true);
  const rawAgain = await evaluate({ runDir, checkpoint: 'best' });
  t.true(raw !== undefined && raw.type === 'eval');
  if (raw?.type === 'eval') t.deepEqual([rawAgain.cleanAcc, rawAgain.robustAcc], [raw.cleanAcc, raw.robustAcc]);
});
