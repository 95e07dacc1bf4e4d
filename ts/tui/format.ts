/** Small text formatters shared by the TUI and the plain printer. */

export function pct(x: number | undefined): string {
  return x === undefined ? '   -  ' : `${(100 * x).toFixed(1).padStart(5)}%`;
}

/**
 * Decimals an accuracy over n images supports: one image is 100/n percent,
 * so 0 decimals up to 100 images, 1 up to 1,000, 2 beyond.
 */
export function percentDecimals(n: number): number {
  return Math.min(2, Math.max(0, Math.ceil(Math.log10(Math.max(n, 1) / 100) - 1e-9)));
}

/** An accuracy of n images in the precision n supports: `52%`, `52.3%`, `52.31%`. */
export function pctOf(x: number, n: number): string {
  return `${(100 * x).toFixed(percentDecimals(n))}%`;
}

/** A 95% interval of an accuracy over n images, as `42–61%`. */
export function intervalOf([lo, hi]: readonly [number, number], n: number): string {
  const d = percentDecimals(n);
  return `${(100 * lo).toFixed(d)}–${(100 * hi).toFixed(d)}%`;
}

export function num(x: number | undefined, digits = 3): string {
  return x === undefined ? '-' : x.toFixed(digits);
}

/** A learning rate in 3 significant digits, without padding: 0.03, 0.001, 5e-5. */
export function lr(x: number): string {
  return String(Number(x.toPrecision(3)));
}

export function duration(seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds)) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  const mm = String(m).padStart(2, '0');
  const ss = String(sec).padStart(2, '0');
  return h > 0 ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

/**
 * A run ETA: `12:34`; `≥12:34` when it leaves out evaluations not timed yet
 * (see eta.ts); `--:--` when nothing is known.
 */
export function etaText(eta: { seconds: number; partial: boolean } | undefined): string {
  return eta === undefined ? duration(undefined) : `${eta.partial ? '≥' : ''}${duration(eta.seconds)}`;
}

/** A text progress bar of `width` cells. */
export function bar(done: number, total: number, width = 30): string {
  const frac = total > 0 ? Math.min(1, Math.max(0, done / total)) : 0;
  const full = Math.round(frac * width);
  return `${'█'.repeat(full)}${'░'.repeat(width - full)}`;
}

/** `1 epoch`, `3 epochs`: a count with its noun in the right number. */
export const count = (n: number, noun: string): string => `${n} ${noun}${n === 1 ? '' : 's'}`;
