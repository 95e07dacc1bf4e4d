/**
 * Download progress on stderr: a bar redrawn in place on a terminal, plain
 * lines (every 10 %) otherwise, so logs and CI output stay readable.
 */
import type { Environment } from '../environment.js';

export interface ProgressOutput {
  /** Writes one whole line (the output adds the newline). */
  line(text: string): void;
  /** On a terminal: writes text as is (for `\r` redraws); absent elsewhere. */
  redraw?: (text: string) => void;
  /** Terminal width, for the bar. */
  columns?: number;
}

/** stderr: redrawn bar when it is a terminal (and not CI), lines otherwise. */
export function stderrProgress(env: Environment = process.env): ProgressOutput {
  const write = (s: string) => {
    if (!process.stderr.destroyed) process.stderr.write(s);
  };
  const tty = Boolean(process.stderr.isTTY) && !env.CI;
  return {
    line: (s) => write(`${s}\n`),
    ...(tty ? { redraw: write, columns: process.stderr.columns } : {}),
  };
}

export const megabytes = (n: number) => `${(n / 1e6).toFixed(1)} MB`;

function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

export class ProgressBar {
  private lastDraw = 0;
  private lastDecile: number;
  private readonly started: number;
  private readonly startBytes: number;
  private drawn = false;

  constructor(
    private readonly label: string,
    private readonly total: number | null,
    private readonly out: ProgressOutput,
    startBytes = 0,
    private readonly now: () => number = Date.now,
  ) {
    this.started = now();
    this.startBytes = startBytes;
    this.lastDecile = total ? Math.floor((startBytes / total) * 10) : Math.floor(startBytes / 16e6);
  }

  private rate(received: number): number {
    const seconds = (this.now() - this.started) / 1000;
    return seconds > 0 ? (received - this.startBytes) / seconds : 0;
  }

  update(received: number): void {
    const { total, out } = this;
    if (out.redraw) {
      const t = this.now();
      if (t - this.lastDraw < 100 && received !== total) return;
      this.lastDraw = t;
      const rate = this.rate(received);
      const speed = rate > 0 ? `  ${megabytes(rate)}/s` : '';
      let text: string;
      if (total) {
        const frac = Math.min(1, received / total);
        const eta = rate > 0 ? `  ETA ${duration((total - received) / rate)}` : '';
        const tail = ` ${(frac * 100).toFixed(1).padStart(5)}%  ${megabytes(received)}/${megabytes(total)}${speed}${eta}`;
        const width = Math.max(10, Math.min(40, (out.columns ?? 80) - this.label.length - tail.length - 4));
        const filled = Math.round(frac * width);
        text = `${this.label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}]${tail}`;
      } else {
        text = `${this.label} ${megabytes(received)}${speed}`;
      }
      out.redraw(`\r${text}\x1b[K`);
      this.drawn = true;
      return;
    }
    // Lines: one per 10 % (or per 16 MB when the size is unknown).
    const step = total ? Math.floor((received / total) * 10) : Math.floor(received / 16e6);
    if (step > this.lastDecile) {
      this.lastDecile = step;
      const rate = this.rate(received);
      out.line(
        total
          ? `${this.label}: ${Math.min(100, step * 10)}% (${megabytes(received)} of ${megabytes(total)}${rate > 0 ? `, ${megabytes(rate)}/s` : ''})`
          : `${this.label}: ${megabytes(received)}${rate > 0 ? ` (${megabytes(rate)}/s)` : ''}`,
      );
    }
  }

  /** Ends the bar's line (on a terminal), so the next message starts on its own. */
  end(): void {
    if (this.out.redraw && this.drawn) this.out.redraw('\n');
    this.drawn = false;
  }
}
