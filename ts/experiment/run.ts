/**
 * Runs one training job: load data, create the run folder, hand the validated
 * config and the data to the native trainer, record every event.
 */
import type { RunConfig } from '../config/schema.js';
import { toNativeConfig } from '../config/resolve.js';
import { datasetInfo, loadDataset } from '../data/index.js';
import { loadNative } from '../native.js';
import type { TrainEvent, TrainSummary } from '../native-types.js';
import { createRunDir, MetricsLog, writeConfig, writeSummary } from './run-dir.js';

export interface RunOptions {
  onEvent?: (event: TrainEvent) => void;
  signal?: AbortSignal;
}

export interface RunResult {
  runDir: string;
  summary: TrainSummary;
}

export async function runExperiment(config: RunConfig, options: RunOptions = {}): Promise<RunResult> {
  const info = datasetInfo(config.dataset.name);
  const data = loadDataset(config.dataset.name, config.dataset);
  const native = loadNative();
  const run = createRunDir(config.runsDir, config.runName, config.method.name);
  const nativeConfig = toNativeConfig(config, info.numClasses, run.checkpoints);
  writeConfig(run, config, nativeConfig);
  const log = new MetricsLog(run);
  try {
    const summary = await native.train(
      nativeConfig,
      data,
      (event) => {
        log.append(event);
        options.onEvent?.(event);
      },
      options.signal,
    );
    writeSummary(run, summary);
    return { runDir: run.path, summary };
  } catch (e) {
    const err = e as Error & { code?: string };
    writeSummary(run, { status: 'failed', error: err.message, ...(err.code ? { code: err.code } : {}) });
    throw Object.assign(err, { runDir: run.path });
  } finally {
    await log.close();
  }
}
