/**
 * st-native's public API: typed, promise-based, no global state beyond the
 * loaded addon. Long work runs on native threads; progress arrives as typed
 * events; an AbortSignal stops training within one step (a checkpoint is
 * saved first).
 */
import { parseEvaluateOptions, parseTrainOptions, type TrainOptions } from './api-options.js';
import { ConfigError, resolveConfig } from './config/index.js';
import {
  evaluateAttacks,
  evaluateRun,
  runExperiment,
  type AttackEvaluateOptions,
  type EvaluateOptions,
  type Evaluation,
  type RunResult,
} from './experiment/index.js';
import { loadNative } from './native.js';
import type { CheckpointInfo, EvalResult, ModelInfo, RuntimeInfo } from './native-types.js';

export type { TrainOptions } from './api-options.js';
export type { Environment } from './environment.js';
export { isAttackName, isPresetName, PRESET_NAMES, type AttackName, type PresetName } from './names.js';

/**
 * Trains one model. Rejects with `ConfigError` (before any work) for an
 * invalid config, `DatasetError` for bad data, or a `NativeError` with a
 * stable `code` for failures in the core.
 */
export async function train(rawOptions?: TrainOptions): Promise<RunResult> {
  // JS callers bypass the types: check at run time, inside the async function so a bad option rejects.
  const options = parseTrainOptions(rawOptions);
  const overrides = options.overrides === undefined ? [] : Array.isArray(options.overrides) ? options.overrides : [options.overrides];
  const config = resolveConfig({ preset: options.preset, overrides });
  return runExperiment(config, { onEvent: options.onEvent, signal: options.signal, isolate: options.isolate, threads: options.threads });
}

/**
 * Evaluates a checkpoint. Without `attacks`: a run's checkpoint under the
 * run's own per-epoch evaluation (clean and PGD accuracy, reproducing the
 * logged numbers). With `attacks`: the attack table (e.g. `PAPER_ATTACKS`)
 * for a run folder or any checkpoint file, with the per-point worst case,
 * progress events and cancellation. Rejects with ConfigError for bad options.
 */
export async function evaluate(options: AttackEvaluateOptions): Promise<Evaluation>;
export async function evaluate(options: EvaluateOptions): Promise<EvalResult>;
export async function evaluate(options: EvaluateOptions | AttackEvaluateOptions): Promise<EvalResult | Evaluation> {
  const parsed = parseEvaluateOptions(options);
  return 'attacks' in parsed ? evaluateAttacks(parsed) : evaluateRun(parsed);
}

/** The registered models with parameter counts for `numClasses` classes. */
export function listModels(numClasses = 10): ModelInfo[] {
  return loadNative().listModels(numClasses);
}

/** libtorch version and CUDA availability of the loaded addon. */
export function runtimeInfo(): RuntimeInfo {
  return loadNative().runtimeInfo();
}

/**
 * Reads a checkpoint's header and verifies its checksum without loading it
 * into a model: what it was written for (model, classes, epoch, seed) and
 * whether it was verified. Throws a NativeError `ERR_CHECKPOINT` for a file
 * that cannot be trusted (truncated, damaged, not safetensors, not a file).
 */
export function inspectCheckpoint(file: string): CheckpointInfo {
  if (typeof file !== 'string' || file.length === 0) {
    throw new ConfigError([{ path: 'file', message: `expected a checkpoint path, got ${JSON.stringify(file)}` }]);
  }
  return loadNative().inspectCheckpoint(file);
}

export {
  baseConfig,
  ConfigError,
  DEFAULT_PRESET,
  presets,
  resolveConfig,
  runConfigSchema,
  type ConfigIssue,
  type ConfigOverrides,
  type Preset,
  type RunConfig,
} from './config/index.js';
export {
  datasets,
  DatasetError,
  datasetStatus,
  DownloadError,
  fetchDataset,
  resolveDataDir,
  type DatasetInfo,
  type DatasetState,
  type DatasetStatus,
  type FetchOptions,
  type FetchResult,
} from './data/index.js';
export { PAPER_ATTACKS, RUN_ATTACKS, markdownReport } from './experiment/index.js';
export type { AttackEvaluateOptions, AttackInput, EvaluateOptions, Evaluation, RunResult } from './experiment/index.js';
export { trainSeeds, type MetricRow, type SeedFailure, type SeedRun, type SeedsEvent, type SeedsResult, type TrainSeedsOptions } from './experiment/seeds.js';
export type { ChildRun } from './experiment/pool.js';
export type { AutoReport } from './report/auto.js';
export { sweep, type SweepAxis, type SweepCell, type SweepCellResult, type SweepEvent, type SweepOptions, type SweepResult } from './experiment/sweep.js';
export { compareRuns, listRuns, type AttackRow, type GroupRow, type ListRunsOptions, type RunComparison, type RunRow } from './experiment/runs.js';
export { studentTQuantile, summarize, type MetricSummary } from './experiment/stats.js';
export { IsolatedRunError, isolatedThreads, runIsolated, type IsolatedRunErrorCode, type IsolatedRunOptions } from './experiment/isolated.js';
export { NativeError } from './native.js';
// Plots and HTML reports (ts/report): writeReport, and the plots a sweep or comparison draws.
export { intervalSvg, ReportInputError, tradeOffSvg, writeReport } from './report/public.js';
export type { IntervalPlotOptions, IntervalRow, ReportOptions, ReportResult, TradeOffPoint } from './report/public.js';
export { NotARunFolderError } from './experiment/run-dir.js';
export { OptionsError } from './options-error.js';
export type * from './native-types.js';
