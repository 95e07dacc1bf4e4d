/** `eval`'s plain progress: lines on stderr for logs and pipes. */
import type { EvalEvent } from '../native-types.js';
import { duration, pct } from '../tui/format.js';

/**
 * Plain progress lines (stderr, so that stdout holds the table alone): the
 * start, a line per attack or AutoAttack stage at most every few seconds
 * with its elapsed time and ETA (from its rate so far), each result, notices.
 */
export class PlainEvalPrinter {
  private lastBatchLine = 0;
  /** Attacks with stages (AutoAttacks): their batch lines count robust images, not accuracy. */
  private readonly stages = new Set<string>();
  /** When the evaluation, and the current attack or AutoAttack stage, began (ms). */
  private readonly started: number;
  private phaseStarted: number;
  constructor(
    private readonly write: (line: string) => void,
    private readonly batchIntervalMs = 5000,
    private readonly now: () => number = Date.now,
  ) {
    this.started = this.phaseStarted = now();
  }

  /** Elapsed of the current attack or stage, its ETA, and the evaluation's elapsed. */
  private timing(done: number, total: number): string {
    const elapsed = (this.now() - this.phaseStarted) / 1000;
    const eta = done > 0 ? (elapsed * (total - done)) / done : null;
    return `${duration(elapsed)} elapsed, ETA ${eta === null ? '--:--' : duration(eta)} (${duration((this.now() - this.started) / 1000)} in all)`;
  }

  push(e: EvalEvent): void {
    switch (e.type) {
      case 'start':
        this.phaseStarted = this.now();
        this.write(`eval: ${e.samples} images, ${e.attacks.join(', ')}; batch ${e.batchSize}, ${e.device}; checkpoint crc32 ${e.checkpointCrc32}${e.verified ? '' : ' (unverified: not written by st-native)'}`);
        break;
      case 'batch': {
        const now = this.now();
        if (now - this.lastBatchLine < this.batchIntervalMs || e.done === e.total) return;
        this.lastBatchLine = now;
        this.write(`${e.attack}: ${e.done}/${e.total} images, ${this.stages.has(e.attack) ? `${e.correct} robust` : `${pct(e.correct / e.done).trim()} so far`}; ${this.timing(e.done, e.total)}`);
        break;
      }
      case 'stage':
        this.stages.add(e.attack);
        this.phaseStarted = this.now();
        this.write(`${e.attack}: stage ${e.stageIndex + 1}/${e.stages} ${e.stage} on ${e.points} images (${e.robust}/${e.samples} robust so far)`);
        break;
      case 'attack':
        // The next attack starts now.
        this.phaseStarted = this.now();
        this.write(`${e.name}: ${pct(e.accuracy).trim()} (${e.correct}/${e.samples}) in ${duration(e.seconds)}`);
        break;
      case 'notice':
        this.write(`note: ${e.message}`);
        break;
    }
  }
}
