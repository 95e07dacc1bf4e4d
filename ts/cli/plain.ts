/**
 * Progress as plain lines for pipes and CI: a step line at most every few
 * seconds, and one line for each epoch, evaluation, checkpoint and the end.
 */
import type { TrainEvent } from '../native-types.js';
import { count, duration, num, pct } from '../tui/format.js';
import { epochEtaSeconds, initialState, reduce, runEtaSeconds, type TrainViewState } from '../tui/state.js';


export class PlainPrinter {
  private state: TrainViewState = initialState;
  private lastStepLine = 0;

  constructor(
    private readonly write: (line: string) => void,
    private readonly stepIntervalMs = 5000,
  ) {}

  push(e: TrainEvent): void {
    this.state = reduce(this.state, e);
    const s = this.state;
    switch (e.type) {
      case 'start':
        this.write(
          `start: ${e.method} on ${e.model} (${e.parameters.toLocaleString('en-US')} params), ${e.device}, ${e.trainSize} train / ${e.testSize} held out, ${count(e.epochs, 'epoch')} × ${count(e.stepsPerEpoch, 'step')}`,
        );
        break;
      case 'step': {
        const now = Date.now();
        if (now - this.lastStepLine < this.stepIntervalMs && e.step !== e.stepsPerEpoch) return;
        this.lastStepLine = now;
        this.write(
          `epoch ${e.epoch}/${s.epochs} step ${e.step}/${e.stepsPerEpoch}: loss ${num(e.loss)} ce_adv ${num(e.parts.ceAdv)} ce_benign ${num(e.parts.ceBenign)} ce_col ${num(e.parts.ceCol)} reg ${num(e.parts.reg, 4)} · ${e.imagesPerSec.toFixed(0)} img/s · epoch ETA ${duration(epochEtaSeconds(s))} · run ETA ${duration(runEtaSeconds(s))}`,
        );
        break;
      }
      case 'epoch':
        this.write(`epoch ${e.epoch} trained in ${duration(e.seconds)}: loss ${num(e.loss)}, train acc ${pct(e.trainAcc).trim()}, ${e.imagesPerSec.toFixed(0)} img/s; evaluating…`);
        break;
      case 'eval':
        this.write(`epoch ${e.epoch} ${e.split} (${e.samples}): clean ${pct(e.cleanAcc).trim()}, ${e.attack} ${pct(e.robustAcc).trim()} (${duration(e.seconds)})`);
        break;
      case 'checkpoint':
        this.write(`checkpoint (${e.kind}): ${e.path}`);
        break;
      case 'done':
        break;
    }
  }
}
