/**
 * Runs one training job: load data, check everything that can be checked,
 * create the run folder, hand the validated config and the data to the
 * native trainer, record every event.
 */
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { RunConfig } from '../config/schema.js';
import { toNativeConfig } from '../config/resolve.js';
import { prepareExtra } from '../data/extra-run.js';
import { datasetInfo, prepareDataset } from '../data/index.js';
import { loadNative } from '../native.js';
import type { TrainEvent, TrainSummary } from '../native-types.js';
import type { ResumePlan } from './resume.js';
import { checkThreads, runIsolated } from './isolated.js';
import { launchRank } from './launch.js';
import { provenance } from './provenance.js';
import { createRunDir, MetricsLog, sweepRunsFolder, writeConfig, writeSummary, type RunDir } from './run-dir.js';

export interface RunOptions {
  onEvent?: (event: TrainEvent) => unknown;
  signal?: AbortSignal;
  /** Continue this run (see resume.ts) instead of starting a new one. */
  resume?: ResumePlan;
  /** Called once the run folder exists, before training starts. */
  onRunDir?: (runDir: string) => void;
  /**
   * Train in a child process of its own (isolated.ts): same events, result
   * and cancellation; a crash or kill of the child rejects with
   * IsolatedRunError (ERR_CHILD_DIED) instead of ending this process.
   */
  isolate?: boolean;
  /**
   * libtorch threads for this run, over the config's `threads`. Isolated runs
   * without either get an equal share of the cores (see isolated.ts).
   */
  threads?: number;
}

export interface RunResult {
  /** The run folder ('' on a data-parallel rank other than 0, which has none). */
  runDir: string;
  summary: TrainSummary;
}

/** What `fetch` and `timers/promises` reject with for an aborted signal. */
export function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('This operation was aborted', 'AbortError');
}

export async function runExperiment(config: RunConfig, options: RunOptions = {}): Promise<RunResult> {
  // Aborted before it started: nothing is trained and nothing is written.
  if (options.signal?.aborted) throw abortReason(options.signal);
  if (options.isolate) return runIsolated(config, options);
  if (options.threads !== undefined) config = { ...config, threads: checkThreads(options.threads) };
  const info = datasetInfo(config.dataset.name);
  // Fetches a missing dataset first when online (progress on stderr).
  const data = await prepareDataset(config.dataset.name, config.dataset, { signal: options.signal });
  // The extra images stay in their file (the core reads them by path); this
  // imports RST's pickle when needed and checks the file fits the dataset.
  await prepareExtra(config.dataset, { shape: [data.channels, data.height, data.width], numClasses: info.numClasses }, { signal: options.signal });
  const native = loadNative();
  // Everything checkable is checked before the run folder exists, so a run
  // that cannot start (a bad initCheckpoint, no GPU, too large a batch)
  // leaves nothing behind.
  const resumeFile = options.resume?.resumeFile ?? null;
  native.preflight(
    toNativeConfig(config, info.numClasses, path.join(config.runsDir, '.preflight'), resumeFile),
    [data.channels, data.height, data.width],
    { train: data.train.labels.length, test: data.test.labels.length, validation: data.validation?.labels.length ?? null },
  );
  // A data-parallel rank other than 0 trains its part and writes nothing:
  // rank 0 owns the run folder (the core writes its checkpoints on rank 0 only).
  const launch = launchRank();
  if (launch !== null && launch.rank !== 0) {
    const nowhere = path.join(tmpdir(), `st-native-rank-${launch.rank}-unused`);
    const summary = await native.train(toNativeConfig(config, info.numClasses, nowhere, resumeFile), data, (event) => options.onEvent?.(event), options.signal);
    return { runDir: '', summary };
  }
  let run: RunDir;
  if (options.resume) {
    // The run's own folder: its checkpoints are overwritten epoch by epoch
    // as the uninterrupted run would have, its event log grows.
    run = { path: options.resume.runDir, checkpoints: path.join(options.resume.runDir, 'checkpoints') };
    sweepRunsFolder(path.dirname(run.path));
  } else {
    sweepRunsFolder(config.runsDir);
    run = createRunDir(config.runsDir, config.runName, config.method.name);
  }
  const nativeConfig = toNativeConfig(config, info.numClasses, run.checkpoints, resumeFile);
  try {
    writeConfig(run, config, nativeConfig, provenance(native.runtimeInfo().libtorchVersion));
  } catch (e) {
    // A folder without its config is no run (full disk, permissions).
    if (!options.resume) rmSync(run.path, { recursive: true, force: true });
    throw e;
  }
  options.onRunDir?.(run.path);
  const log = new MetricsLog(run);
  let summary: TrainSummary;
  try {
    summary = await native.train(
      nativeConfig,
      data,
      (event) => {
        log.append(event);
        return options.onEvent?.(event);
      },
      options.signal,
    );
  } catch (e) {
    const err = e as Error & { code?: string };
    // The training error is the one to report: a summary or log that cannot
    // be written either (the same full disk, say) must not replace it.
    try {
      writeSummary(run, { status: 'failed', error: err.message, ...(err.code ? { code: err.code } : {}) });
    } catch {
      /* first error wins */
    }
    await log.close().catch(() => undefined);
    if (err !== null && typeof err === 'object') Object.assign(err, { runDir: run.path });
    throw err;
  }
  try {
    writeSummary(run, summary);
  } catch (e) {
    await log.close().catch(() => undefined);
    throw Object.assign(e as Error, { runDir: run.path });
  }
  // A run whose event log is incomplete is reported as failed (summary.json and checkpoints stay).
  await log.close().catch((e: unknown) => {
    throw Object.assign(e as Error, { runDir: run.path });
  });
  return { runDir: run.path, summary };
}
