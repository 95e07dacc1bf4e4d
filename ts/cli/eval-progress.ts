/** `eval`'s plain progress: lines on stderr for logs and pipes. */
import type { EvalEvent } from '../native-types.js';
import { duration, pct, pctOf } from '../tui/format.js';

/** At most one progress line this often (ms): a log of hours stays readable. */
export const PLAIN_PROGRESS_EVERY_MS = 15_000;

/**
 * Plain progress lines (stderr, so that stdout holds the table alone): the
 * start, a progress line at most every `progressIntervalMs` (from `batch`
 * events, and from `progress` events inside a long batch) with the attack's
 * or AutoAttack stage's elapsed time and ETA (from its rate so far), each
 * stage, each result, notices.
 */
export class PlainEvalPrinter {
  private lastProgressLine: number;
  /** Attacks with stages (AutoAttacks): their current stage ("apgd-t 2/4"); their batch lines count robust images, not accuracy. */
  private readonly stages = new Map<string, string>();
  /** When the evaluation, and the current attack or AutoAttack stage, began (ms). */
  private readonly started: number;
  private phaseStarted: number;
  constructor(
    private readonly write: (line: string) => void,
    private readonly progressIntervalMs = PLAIN_PROGRESS_EVERY_MS,
    private readonly now: () => number = Date.now,
  ) {
    this.started = this.phaseStarted = now();
    // The first progress line comes an interval after the start, not at once.
    this.lastProgressLine = this.started;
  }

  /** Elapsed of the current attack or stage (`elapsed` s, else from the printer's clock), its ETA, and the evaluation's elapsed. */
  private timing(done: number, total: number, elapsed = (this.now() - this.phaseStarted) / 1000): string {
    const eta = done > 0 ? (elapsed * (total - done)) / done : null;
    return `${duration(elapsed)} elapsed, ETA ${eta === null ? '--:--' : duration(eta)} (${duration((this.now() - this.started) / 1000)} in all)`;
  }

  /** Whether a progress line is due (and if so, counts it as printed). */
  private due(): boolean {
    const now = this.now();
    if (now - this.lastProgressLine < this.progressIntervalMs) return false;
    this.lastProgressLine = now;
    return true;
  }

  push(e: EvalEvent): void {
    switch (e.type) {
      case 'start':
        this.phaseStarted = this.now();
        this.write(`eval: ${e.samples} images, ${e.attacks.join(', ')}; batch ${e.batchSize}, ${e.device}; checkpoint crc32 ${e.checkpointCrc32}${e.verified ? '' : ' (unverified: not written by st-native)'}`);
        break;
      case 'batch': {
        if (e.done === e.total || !this.due()) return;
        this.write(`${e.attack}: ${e.done}/${e.total} images, ${this.stages.has(e.attack) ? `${e.correct} robust` : `${pct(e.correct / e.done).trim()} so far`}; ${this.timing(e.done, e.total)}`);
        break;
      }
      case 'progress': {
        if (e.done >= e.total || !this.due()) return;
        const stage = this.stages.get(e.attack);
        this.write(`${e.attack}: ${stage === undefined ? '' : `${stage}, `}${Math.floor(e.done)}/${e.total} images (${pctOf(e.done / e.total, 100)}); ${this.timing(e.done, e.total, e.seconds)}`);
        break;
      }
      case 'stage':
        this.stages.set(e.attack, `${e.stage} ${e.stageIndex + 1}/${e.stages}`);
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
