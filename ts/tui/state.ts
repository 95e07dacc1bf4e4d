/**
 * The training view's state, folded from events by a pure reducer (so the
 * TUI, the plain printer and tests all read the same numbers).
 */
import type { EvalResult, LossParts, TrainEvent, TrainSummary } from '../native-types.js';
import { evalLeftSeconds, runEta, trainLeftSeconds, type Eta, type EvalUnderWay } from './eta.js';

/** A finished epoch: its `epoch` event, then its evaluation and best marker. */
export type EpochRow = Omit<Extract<TrainEvent, { type: 'epoch' }>, 'type'> & {
  eval?: EvalResult;
  /**
   * A `best` checkpoint was written for this epoch: `new` when it beat the
   * best so far, `tied` when it equalled it (a tie goes to the later epoch,
   * as the reference code selects). Never cleared by later epochs: the table
   * is printed once, row by row.
   */
  best?: 'new' | 'tied';
};

/** The evaluation under way: after an epoch, or the final test. */
export type EvalProgress = EvalUnderWay & Omit<Extract<TrainEvent, { type: 'evalProgress' }>, 'type' | 'done' | 'total' | 'elapsedSec'>;

export interface TrainViewState {
  model?: string;
  method?: string;
  device?: string;
  parameters?: number;
  trainSize: number;
  testSize: number;
  epochs: number;
  stepsPerEpoch: number;
  /** Current (1-based) epoch and step. */
  epoch: number;
  step: number;
  lr: number;
  loss?: number;
  parts: LossParts;
  imagesPerSec?: number;
  elapsedSec: number;
  /** Epochs after which the evaluation runs, and the final test's images (0: none). */
  evalEpochs: number[];
  finalTestSize: number;
  /** Seconds the last finished epoch's training took (for the run ETA). */
  epochTrainSec?: number;
  /** Seconds per image of the last finished evaluation (for the run ETA). */
  evalSecPerImage?: number;
  /** The evaluation under way, as its last progress event told. */
  evalProgress?: EvalProgress;
  /**
   * `between`: the current epoch is trained and evaluated, its checkpoints
   * are being written; `testing`: the final test of the best checkpoint.
   */
  phase: 'starting' | 'training' | 'evaluating' | 'between' | 'testing' | 'done';
  /**
   * Wall-clock time (ms) of the latest event, set by whoever feeds events
   * live (the store): the ETAs count down from it between events.
   */
  updatedAtMs?: number;
  rows: EpochRow[];
  /** The best checkpoint's test result, when selection ran on a validation split. */
  finalTest?: EvalResult;
  bestEpoch?: number;
  lastCheckpoint?: string;
  summary?: TrainSummary;
  /** The user asked to stop (first Ctrl-C); the native loop stops within a step. */
  stopping?: boolean;
}

export const initialState: TrainViewState = {
  trainSize: 0,
  testSize: 0,
  epochs: 0,
  stepsPerEpoch: 0,
  epoch: 0,
  step: 0,
  lr: 0,
  parts: {},
  elapsedSec: 0,
  evalEpochs: [],
  finalTestSize: 0,
  phase: 'starting',
  rows: [],
};

export function reduce(s: TrainViewState, e: TrainEvent): TrainViewState {
  switch (e.type) {
    case 'start':
      return {
        ...s,
        model: e.model,
        method: e.method,
        device: e.device,
        parameters: e.parameters,
        trainSize: e.trainSize,
        testSize: e.testSize,
        epochs: e.epochs,
        stepsPerEpoch: e.stepsPerEpoch,
        epoch: e.startEpoch,
        evalEpochs: e.evalEpochs,
        finalTestSize: e.finalTestSize ?? 0,
        phase: 'training',
      };
    case 'step':
      return {
        ...s,
        epoch: e.epoch,
        step: e.step,
        stepsPerEpoch: e.stepsPerEpoch,
        lr: e.lr,
        loss: e.loss,
        parts: e.parts,
        imagesPerSec: e.imagesPerSec,
        elapsedSec: e.elapsedSec,
        phase: 'training',
      };
    case 'epoch':
      return {
        ...s,
        phase: s.evalEpochs.includes(e.epoch) ? 'evaluating' : 'between',
        epochTrainSec: e.seconds,
        evalProgress: undefined,
        rows: [...s.rows, (({ type: _type, ...row }) => row)(e)],
      };
    case 'evalProgress': {
      const { type: _type, ...progress } = e;
      return { ...s, phase: e.phase === 'finalTest' ? 'testing' : 'evaluating', evalProgress: progress };
    }
    case 'eval': {
      const { type: _type, ...result } = e;
      const timing = { evalSecPerImage: result.samples > 0 ? result.seconds / result.samples : s.evalSecPerImage, evalProgress: undefined };
      // The weight average's evaluation (a run with `ema`): the rows keep
      // the trained weights' results; the average's is in the log and summary.
      if (result.ema === true) return { ...s, ...timing };
      // Per-epoch evaluations all use one split; a test evaluation after
      // validation-based selection is the final report, not an epoch's row.
      const selectionSplit = s.rows.find((r) => r.eval)?.eval?.split ?? result.split;
      if (result.split !== selectionSplit) return { ...s, ...timing, finalTest: result, finalTestSize: 0 };
      const rows = s.rows.map((r) => (r.epoch === e.epoch ? { ...r, eval: result } : r));
      return { ...s, ...timing, rows, phase: 'between' };
    }
    case 'checkpoint': {
      if (e.kind !== 'best') return { ...s, lastCheckpoint: e.path };
      const rows = s.rows.map((r) => (r.epoch === e.epoch ? { ...r, best: e.tied ? ('tied' as const) : ('new' as const) } : r));
      return { ...s, rows, bestEpoch: e.epoch };
    }
    case 'done': {
      const { type: _type, ...summary } = e;
      return { ...s, phase: 'done', summary, elapsedSec: summary.seconds };
    }
  }
}

/**
 * Whether a finished epoch's row is final. Its `eval` event comes before its
 * checkpoints (the `best` one decides the marker), so a row is final only once
 * the run has moved on: a step of a later epoch, or the end of the run. Final
 * rows go to the printed-once table; the latest row is shown live until then.
 */
export function isSettled(s: TrainViewState, row: EpochRow): boolean {
  return s.phase === 'done' || row.epoch < s.epoch;
}

/** Whether a row has all the numbers it will get: evaluated, or not scheduled for evaluation. */
function isComplete(s: TrainViewState, row: EpochRow): boolean {
  return row.eval !== undefined || !s.evalEpochs.includes(row.epoch);
}

/**
 * Rows for the printed-once table, in epoch order: settled and complete (at
 * the end, incomplete ones too: a cancelled evaluation).
 */
export function settledRows(s: TrainViewState): EpochRow[] {
  return s.rows.filter((r) => isSettled(s, r) && (isComplete(s, r) || s.phase === 'done'));
}

/** The latest complete row while its checkpoints may still arrive. */
export function pendingRow(s: TrainViewState): EpochRow | undefined {
  const last = s.rows.at(-1);
  return last && isComplete(s, last) && !isSettled(s, last) ? last : undefined;
}

/** Seconds since the state's numbers were measured, at wall-clock `nowMs`. */
function sinceSec(s: TrainViewState, nowMs: number | undefined): number {
  return nowMs === undefined || s.updatedAtMs === undefined ? 0 : Math.max(0, (nowMs - s.updatedAtMs) / 1000);
}

/** Seconds left in the current epoch's training, from the live throughput (0 once it is trained). */
export function epochEtaSeconds(s: TrainViewState, nowMs?: number): number | undefined {
  if (s.phase !== 'training') return s.phase === 'starting' ? undefined : 0;
  if (s.stepsPerEpoch === 0) return undefined;
  return trainLeftSeconds({ trainSize: s.trainSize, stepFraction: s.step / s.stepsPerEpoch, imagesPerSec: s.imagesPerSec, sinceSec: sinceSec(s, nowMs) });
}

/** Seconds left in the evaluation under way, if one is and it can be timed. */
export function evalEtaSeconds(s: TrainViewState, nowMs?: number): number | undefined {
  return s.evalProgress && evalLeftSeconds(s.evalProgress, s.evalSecPerImage, sinceSec(s, nowMs));
}

/** Time left in the whole run: this epoch, its evaluation, later epochs and theirs, the final test (see eta.ts). */
export function runEtaOf(s: TrainViewState, nowMs?: number): Eta | undefined {
  if (s.phase === 'starting' || s.phase === 'done') return undefined;
  return runEta({
    epochs: s.epochs,
    epoch: s.epoch,
    phase: s.phase,
    stepFraction: s.stepsPerEpoch > 0 ? s.step / s.stepsPerEpoch : 0,
    trainSize: s.trainSize,
    imagesPerSec: s.imagesPerSec,
    epochTrainSec: s.epochTrainSec,
    evalEpochs: s.evalEpochs,
    evalSize: s.testSize,
    finalTestSize: s.finalTestSize,
    evalSecPerImage: s.evalSecPerImage,
    current: s.evalProgress,
    sinceSec: sinceSec(s, nowMs),
  });
}

/** Seconds left in the whole run, when every part of it could be timed. */
export function runEtaSeconds(s: TrainViewState, nowMs?: number): number | undefined {
  const eta = runEtaOf(s, nowMs);
  return eta && !eta.partial ? eta.seconds : undefined;
}
