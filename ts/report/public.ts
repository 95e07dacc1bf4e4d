/**
 * The report's public face (what ts/index.ts exports): the plotting code and
 * vega load on first use, and no declaration here reaches vega's types
 * (they need the DOM library; the published types must compile without it).
 */
import type { IntervalPlotOptions, IntervalRow, TradeOffPoint } from './plot-types.js';

export type { IntervalPlotOptions, IntervalRow, RunCurves, TradeOffPoint } from './plot-types.js';
export { ReportInputError } from './history.js';
export { writeReport, type ReportOptions, type ReportResult } from './report.js';

/** Clean vs robust accuracy as an inline SVG (the paper's Fig. 6 kind), one series per method/regulariser. */
export async function tradeOffSvg(points: readonly TradeOffPoint[], title?: string): Promise<string> {
  return (await import('./plots.js')).tradeOffSvg(points, title);
}

/** Means with their 95% intervals as an inline SVG. */
export async function intervalSvg(rows: readonly IntervalRow[], options: IntervalPlotOptions = {}): Promise<string> {
  return (await import('./plots.js')).intervalSvg(rows, options);
}
