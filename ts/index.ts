/**
 * st-native's public API: typed, promise-based, no global state beyond the
 * loaded addon. Long work runs on native threads; progress arrives as typed
 * events; an AbortSignal stops training within one step (a checkpoint is
 * saved first).
 */
import { resolveConfig, type ConfigOverrides } from './config/index.js';
import { evaluateRun, runExperiment, type EvaluateOptions, type RunResult } from './experiment/index.js';
import { loadNative } from './native.js';
import type { EvalResult, ModelInfo, RuntimeInfo, TrainEvent } from './native-types.js';

export interface TrainOptions {
  /** Named preset to start from (default `mnist-st-quick`); see `presets`. */
  preset?: string;
  /** Overrides on the preset, applied in order; nested objects merge. */
  overrides?: ConfigOverrides | readonly ConfigOverrides[];
  /** Receives every event of the run, in order. */
  onEvent?: (event: TrainEvent) => void;
  /** Aborting stops training within one step and saves `interrupted.safetensors`. */
  signal?: AbortSignal;
}

/**
 * Trains one model. Rejects with `ConfigError` (before any work) for an
 * invalid config, `DatasetError` for bad data, or a `NativeError` with a
 * stable `code` for failures in the core.
 */
export async function train(options: TrainOptions = {}): Promise<RunResult> {
  const overrides = options.overrides === undefined ? [] : Array.isArray(options.overrides) ? options.overrides : [options.overrides];
  const config = resolveConfig({ preset: options.preset, overrides });
  return runExperiment(config, { onEvent: options.onEvent, signal: options.signal });
}

/** Clean and PGD accuracy of a run's checkpoint on its held-out split. */
export function evaluate(options: EvaluateOptions): Promise<EvalResult> {
  return evaluateRun(options);
}

/** The registered models with parameter counts for `numClasses` classes. */
export function listModels(numClasses = 10): ModelInfo[] {
  return loadNative().listModels(numClasses);
}

/** libtorch version and CUDA availability of the loaded addon. */
export function runtimeInfo(): RuntimeInfo {
  return loadNative().runtimeInfo();
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
export { datasets, DatasetError, type DatasetInfo } from './data/index.js';
export type { EvaluateOptions, RunResult } from './experiment/index.js';
export { NativeError } from './native.js';
export type * from './native-types.js';
