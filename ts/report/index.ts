/** Plots and self-contained HTML reports of runs and folders of runs. */
export { ReportInputError, readHistory, type EpochRow, type EvalRow, type LrRow, type RunHistory } from './history.js';
export {
  accuracySpec,
  intervalSpec,
  intervalSvg,
  learningRateSpec,
  lossSpec,
  renderSvg,
  runCurvesSvg,
  tradeOffSpec,
  tradeOffSvg,
  type IntervalPlotOptions,
  type IntervalRow,
  type RunCurves,
  type TradeOffPoint,
} from './plots.js';
export { buildReport, writeReport, type ReportOptions, type ReportResult } from './report.js';
