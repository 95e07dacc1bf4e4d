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
  let summary: TrainSummary;
  try {
    summary = await native.train(
      nativeConfig,
      data,
      (event) => {
        log.append(event);
        options.onEvent?.(event);
      },
      options.signal,
    );
  } catch (e) {
    const err = e as Error & { code?: string };
    writeSummary(run, { status: 'failed', error: err.message, ...(err.code ? { code: err.code } : {}) });
    // The training error is the one to report, not a log that also failed.
    await log.close().catch(() => undefined);
    throw Object.assign(err, { runDir: run.path });
  }
  writeSummary(run, summary);
  // A run whose event log is incomplete is reported as failed (summary.json and checkpoints stay).
  await log.close().catch((e: unknown) => {
    throw Object.assign(e as Error, { runDir: run.path });
  });
  return { runDir: run.path, summary };
}
