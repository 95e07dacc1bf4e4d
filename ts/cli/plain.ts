/**
 * Progress as plain lines for pipes and CI: a step line, and an evaluation
 * progress line, at most every few seconds; one line for each epoch,
 * evaluation, checkpoint, the final test's start and the end.
 */
import type { TrainEvent } from '../native-types.js';
import { count, duration, etaText, num, pct } from '../tui/format.js';
import { epochEtaSeconds, evalEtaSeconds, initialState, reduce, runEtaOf, type TrainViewState } from '../tui/state.js';

export class PlainPrinter {
  private state: TrainViewState = initialState;
  private lastStepLine = 0;
  private lastEvalLine = 0;

  /** `intervalMs`: the least time between two step lines, or two progress lines of an evaluation. */
  constructor(
    private readonly write: (line: string) => void,
    private readonly intervalMs = 5000,
    private readonly now: () => number = Date.now,
  ) {}

  push(e: TrainEvent): void {
    this.state = reduce(this.state, e);
    const s = this.state;
    const runEta = etaText(runEtaOf(s));
    switch (e.type) {
      case 'start':
        this.write(
          `start: ${e.method} on ${e.model} (${e.parameters.toLocaleString('en-US')} params), ${e.device}, ${e.trainSize} train / ${e.testSize} held out, ${count(e.epochs, 'epoch')} × ${count(e.stepsPerEpoch, 'step')}`,
        );
        break;
      case 'step': {
        const now = this.now();
        if (now - this.lastStepLine < this.intervalMs && e.step !== e.stepsPerEpoch) return;
        this.lastStepLine = now;
        this.write(
          `epoch ${e.epoch}/${s.epochs} step ${e.step}/${e.stepsPerEpoch}: loss ${num(e.loss)} ce_adv ${num(e.parts.ceAdv)} ce_benign ${num(e.parts.ceBenign)} ce_col ${num(e.parts.ceCol)} reg ${num(e.parts.reg, 4)} · ${e.imagesPerSec.toFixed(0)} img/s · epoch ETA ${duration(epochEtaSeconds(s))} · run ETA ${runEta}`,
        );
        break;
      }
      case 'epoch':
        this.write(
          `epoch ${e.epoch} trained in ${duration(e.seconds)}: loss ${num(e.loss)}, train acc ${pct(e.trainAcc).trim()}, ${e.imagesPerSec.toFixed(0)} img/s${s.phase === 'evaluating' ? '; evaluating…' : ''}`,
        );
        break;
      case 'evalProgress': {
        const now = this.now();
        if (e.done === 0) {
          // Its start: the clock for its progress lines starts here (a short one prints none).
          this.lastEvalLine = now;
          if (e.phase === 'finalTest') this.write(`final test of the best checkpoint (epoch ${e.epoch}) on ${e.total} test images…`);
          return;
        }
        // The last batch's event is followed at once by the result's line.
        if (e.done === e.total || now - this.lastEvalLine < this.intervalMs) return;
        this.lastEvalLine = now;
        const what = e.phase === 'finalTest' ? 'final test' : `epoch ${e.epoch} ${e.split}`;
        this.write(`${what}: ${e.done}/${e.total} images in ${duration(e.elapsedSec)} · ETA ${duration(evalEtaSeconds(s))} · run ETA ${runEta}`);
        break;
      }
      case 'eval':
        this.write(`epoch ${e.epoch} ${e.split}${e.ema === true ? ' ema' : ''} (${e.samples}): clean ${pct(e.cleanAcc).trim()}, ${e.attack} ${pct(e.robustAcc).trim()} (${duration(e.seconds)})`);
        break;
      case 'checkpoint':
        this.write(`checkpoint (${e.kind}${e.tied ? ', tied' : ''}): ${e.path}`);
        break;
      case 'done':
        break;
    }
  }
}
