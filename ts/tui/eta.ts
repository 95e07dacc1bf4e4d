/**
 * The run's time left, as plain arithmetic on what the events measured:
 * the rest of this epoch's training at its live speed, the evaluations still
 * to come at the measured seconds per image (the run's schedule, and the
 * final test when selection ran on a validation split), and the later
 * epochs at the last epoch's training time. Between events the clock keeps
 * running: the part under way counts down by the seconds since it was
 * measured, so the ETA never stands still while time passes.
 */

/** The evaluation under way, as its last progress event told. */
export interface EvalUnderWay {
  done: number;
  total: number;
  /** Seconds since it started. */
  elapsedSec: number;
}

export interface EtaInput {
  /** The run's last epoch and the current one (1-based). */
  epochs: number;
  epoch: number;
  /**
   * What runs now: the epoch's training, its evaluation, the final test, or
   * nothing of the epoch (`between`: it is trained and evaluated, its
   * checkpoints are being written).
   */
  phase: 'training' | 'evaluating' | 'testing' | 'between';
  /** Share of this epoch's steps done, 0..1. */
  stepFraction: number;
  trainSize: number;
  /** This epoch's training speed so far (img/s). */
  imagesPerSec?: number;
  /** Seconds the last finished epoch's training took. */
  epochTrainSec?: number;
  /** Epochs after which the evaluation runs (from the run's start event). */
  evalEpochs: readonly number[];
  /** Images of each per-epoch evaluation, and of the final test still to run (0: none). */
  evalSize: number;
  finalTestSize: number;
  /** Seconds per evaluated image, from the last finished evaluation. */
  evalSecPerImage?: number;
  /** The evaluation under way (phase `evaluating` or `testing`). */
  current?: EvalUnderWay;
  /** Seconds since these numbers were measured. */
  sinceSec: number;
}

export interface Eta {
  seconds: number;
  /**
   * Some evaluation could not be timed yet (none has run, and the one under
   * way has no batch done): `seconds` leaves it out and is a lower bound.
   */
  partial: boolean;
}

/** Seconds left in the evaluation under way, counting down since it was measured. */
export function evalLeftSeconds(current: EvalUnderWay, secPerImage: number | undefined, sinceSec: number): number | undefined {
  // Its own pace once a batch is done (the device may be busier than last time).
  const pace = current.done > 0 ? current.elapsedSec / current.done : secPerImage;
  if (pace === undefined) return undefined;
  return Math.max(0, (current.total - current.done) * pace - sinceSec);
}

/** Seconds left in this epoch's training, counting down since it was measured. */
export function trainLeftSeconds(i: Pick<EtaInput, 'trainSize' | 'stepFraction' | 'imagesPerSec' | 'sinceSec'>): number | undefined {
  if (!i.imagesPerSec) return undefined;
  return Math.max(0, (i.trainSize * (1 - i.stepFraction)) / i.imagesPerSec - i.sinceSec);
}

/** The run's time left; undefined until the training speed is known. */
export function runEta(i: EtaInput): Eta | undefined {
  let seconds = 0;
  let partial = false;
  const add = (s: number | undefined) => {
    if (s === undefined) partial = true;
    else seconds += s;
  };
  // The current evaluation's pace, else the last one's, stands for the rest.
  const pace = i.current && i.current.done > 0 ? i.current.elapsedSec / i.current.done : i.evalSecPerImage;
  const evaluation = (images: number) => (images === 0 ? 0 : pace === undefined ? undefined : images * pace);
  const epochTrain = i.epochTrainSec ?? (i.imagesPerSec ? i.trainSize / i.imagesPerSec : undefined);
  if (epochTrain === undefined && i.epoch <= i.epochs) return undefined;
  const evaluated = new Set(i.evalEpochs);

  if (i.phase === 'training') {
    add(trainLeftSeconds(i) ?? epochTrain);
    if (evaluated.has(i.epoch)) add(evaluation(i.evalSize));
  } else if (i.phase === 'evaluating') {
    add(i.current ? evalLeftSeconds(i.current, i.evalSecPerImage, i.sinceSec) : evaluation(i.evalSize));
  }
  for (let e = i.epoch + 1; e <= i.epochs; e++) {
    add(epochTrain);
    if (evaluated.has(e)) add(evaluation(i.evalSize));
  }
  if (i.phase === 'testing' && i.current) add(evalLeftSeconds(i.current, i.evalSecPerImage, i.sinceSec));
  else add(evaluation(i.finalTestSize));
  return { seconds, partial };
}
