/**
 * The plots' input rows, apart from the plotting code: the public API names
 * these types without reaching vega's own type declarations (which need the
 * DOM library), so the published types compile without it.
 */

/** One trained configuration: its clean and robust accuracy (fractions), with 95% intervals when known. */
export interface TradeOffPoint {
  /** One series per method/regulariser, e.g. "st / js". */
  series: string;
  beta: number | null;
  /** Default "β=<beta>" (or the series when there is no beta). */
  label?: string;
  clean: number;
  robust: number;
  cleanInterval?: readonly [number, number];
  robustInterval?: readonly [number, number];
}

/** A bar: a mean (or an accuracy) and its 95% interval, as fractions unless `percent: false`. */
export interface IntervalRow {
  label: string;
  mean: number;
  low: number;
  high: number;
}

export interface IntervalPlotOptions {
  title?: string;
  /** The axis title (default "accuracy"). */
  measure?: string;
  /** Values are fractions shown as percentages (default true). */
  percent?: boolean;
}

export interface RunCurves {
  accuracy: string;
  loss: string | null;
  learningRate: string | null;
}
