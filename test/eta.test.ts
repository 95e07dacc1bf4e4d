/** The run ETA's arithmetic (ts/tui/eta.ts): closed forms and invariants. */
import test from 'ava';
import fc from 'fast-check';
import { evalLeftSeconds, runEta, type EtaInput } from '../ts/tui/eta.js';

/** Epoch 2 of 4, a quarter trained at 100 img/s over 1000 images; evaluations of 200 images at 50 ms each. */
const base: EtaInput = {
  epochs: 4,
  epoch: 2,
  phase: 'training',
  stepFraction: 0.25,
  trainSize: 1000,
  imagesPerSec: 100,
  epochTrainSec: 12,
  evalEpochs: [1, 2, 3, 4],
  evalSize: 200,
  finalTestSize: 0,
  evalSecPerImage: 0.05,
  sinceSec: 0,
};

test('training: the rest of this epoch, its evaluation, and each later epoch with its evaluation', (t) => {
  // 7.5 s of training left, 10 s of evaluation, then epochs 3 and 4 at 12 s + 10 s.
  t.deepEqual(runEta(base), { seconds: 7.5 + 10 + 2 * (12 + 10), partial: false });
});

test('only the scheduled evaluations count, and the final test does when there is one', (t) => {
  t.deepEqual(runEta({ ...base, evalEpochs: [4] }), { seconds: 7.5 + 12 + (12 + 10), partial: false });
  t.deepEqual(runEta({ ...base, evalEpochs: [4], finalTestSize: 1000 }), { seconds: 7.5 + 12 + (12 + 10) + 50, partial: false });
});

test('evaluating: the evaluation under way at its own pace, then the later epochs at that pace', (t) => {
  const current = { done: 50, total: 200, elapsedSec: 5 };
  // 100 ms per image now: 15 s left of this one, 20 s for each later one.
  t.deepEqual(runEta({ ...base, phase: 'evaluating', current }), { seconds: 15 + 2 * (12 + 20), partial: false });
  t.is(evalLeftSeconds(current, 0.05, 0), 15);
  // Before its first batch, the last evaluation's pace stands in.
  t.is(evalLeftSeconds({ done: 0, total: 200, elapsedSec: 0 }, 0.05, 0), 10);
  t.is(evalLeftSeconds({ done: 0, total: 200, elapsedSec: 0 }, undefined, 0), undefined);
});

test('between epochs and in the final test nothing of the finished epoch is counted again', (t) => {
  t.deepEqual(runEta({ ...base, phase: 'between', stepFraction: 1 }), { seconds: 2 * (12 + 10), partial: false });
  const last = { ...base, epoch: 4, stepFraction: 1, finalTestSize: 1000 };
  t.deepEqual(runEta({ ...last, phase: 'between' }), { seconds: 50, partial: false });
  t.deepEqual(runEta({ ...last, phase: 'testing', current: { done: 250, total: 1000, elapsedSec: 25 } }), { seconds: 75, partial: false });
  t.deepEqual(runEta({ ...last, phase: 'testing', finalTestSize: 0 }), { seconds: 0, partial: false });
});

test('before any evaluation is timed the ETA is a lower bound of the training alone; with no speed it is unknown', (t) => {
  const first = { ...base, epoch: 1, epochTrainSec: undefined, evalSecPerImage: undefined };
  // 7.5 s left of epoch 1, then three epochs at the live 10 s each.
  t.deepEqual(runEta(first), { seconds: 7.5 + 3 * 10, partial: true });
  t.deepEqual(runEta({ ...first, phase: 'evaluating', stepFraction: 1, current: { done: 20, total: 200, elapsedSec: 2 } }), {
    seconds: 18 + 3 * (10 + 20),
    partial: false,
  });
  t.is(runEta({ ...first, imagesPerSec: undefined }), undefined);
});

test('between events the part under way counts down with the clock, one second per second, down to the rest of the run', (t) => {
  // Exactly the part under way is consumed by the clock: 7.5 s of training, or 15 s of evaluation.
  t.is(runEta({ ...base, sinceSec: 0 })!.seconds - runEta({ ...base, sinceSec: 1e9 })!.seconds, 7.5);
  const phases: Pick<EtaInput, 'phase' | 'current' | 'stepFraction'>[] = [
    { phase: 'training', stepFraction: 0.25 },
    { phase: 'evaluating', stepFraction: 1, current: { done: 50, total: 200, elapsedSec: 5 } },
  ];
  // fast-check throws a counterexample; the assertion is that it finds none.
  t.notThrows(() =>
    fc.assert(
      fc.property(fc.constantFrom(...phases), fc.double({ min: 0, max: 100, noNaN: true }), fc.double({ min: 0, max: 100, noNaN: true }), (p, a, b) => {
        const at = (sinceSec: number) => runEta({ ...base, ...p, sinceSec })!.seconds;
        const [early, late] = a <= b ? [a, b] : [b, a];
        const current = at(0) - at(1e9);
        // Never up as time passes; exactly down by the time passed while the current part lasts.
        if (at(late) > at(early)) return false;
        if (late <= current && Math.abs(at(early) - at(late) - (late - early)) > 1e-9) return false;
        return at(late) >= at(1e9);
      }),
    ),
  );
});
