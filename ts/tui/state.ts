/**
 * The training view's state, folded from events by a pure reducer (so the
 * TUI, the plain printer and tests all read the same numbers).
 */
import type { EvalResult, LossParts, TrainEvent, TrainSummary } from '../native-types.js';

/** A finished epoch: its `epoch` event, then its evaluation and best marker. */
export type EpochRow = Omit<Extract<TrainEvent, { type: 'epoch' }>, 'type'> & {
  eval?: EvalResult;
  /**
   * This epoch set a new best (a `best` checkpoint was written for it). Never
   * cleared by later epochs: the table is printed once, row by row.
   */
  best?: boolean;
};

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
  /** Seconds the last evaluation took (for the run ETA). */
  lastEvalSeconds?: number;
  phase: 'starting' | 'training' | 'evaluating' | 'done';
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
        phase: 'evaluating',
        rows: [...s.rows, (({ type: _type, ...row }) => row)(e)],
      };
    case 'eval': {
      const { type: _type, ...result } = e;
      // Per-epoch evaluations all use one split; a test evaluation after
      // validation-based selection is the final report, not an epoch's row.
      const selectionSplit = s.rows.find((r) => r.eval)?.eval?.split ?? result.split;
      if (result.split !== selectionSplit) return { ...s, finalTest: result };
      const rows = s.rows.map((r) => (r.epoch === e.epoch ? { ...r, eval: result } : r));
      return { ...s, rows, lastEvalSeconds: e.seconds, phase: 'training' };
    }
    case 'checkpoint': {
      if (e.kind !== 'best') return { ...s, lastCheckpoint: e.path };
      const rows = s.rows.map((r) => (r.epoch === e.epoch ? { ...r, best: true } : r));
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

/** Rows for the printed-once table: settled, and evaluated (at the end, unevaluated ones too: a cancelled evaluation). */
export function settledRows(s: TrainViewState): EpochRow[] {
  return s.rows.filter((r) => isSettled(s, r) && (r.eval !== undefined || s.phase === 'done'));
}

/** The latest evaluated row while its checkpoints may still arrive. */
export function pendingRow(s: TrainViewState): EpochRow | undefined {
  const last = s.rows.at(-1);
  return last && last.eval && !isSettled(s, last) ? last : undefined;
}

/** Seconds left in the current epoch's training, from the live throughput. */
export function epochEtaSeconds(s: TrainViewState): number | undefined {
  if (!s.imagesPerSec || s.stepsPerEpoch === 0) return undefined;
  const left = s.trainSize * (1 - s.step / s.stepsPerEpoch);
  return Math.max(0, left / s.imagesPerSec);
}

/** Seconds left in the whole run: this epoch, later epochs, and their evaluations. */
export function runEtaSeconds(s: TrainViewState): number | undefined {
  const epochEta = epochEtaSeconds(s);
  if (epochEta === undefined || !s.imagesPerSec) return undefined;
  const evalSecs = s.lastEvalSeconds ?? 0;
  const laterEpochs = Math.max(0, s.epochs - s.epoch);
  return epochEta + evalSecs + laterEpochs * (s.trainSize / s.imagesPerSec + evalSecs);
}
