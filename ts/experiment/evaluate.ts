/**
 * Evaluates a checkpoint of a finished (or interrupted) run on its held-out
 * split, in eval mode, with the run's evaluation settings unless overridden.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { ConfigError, fromZodError } from '../config/errors.js';
import { readJsonFile } from '../config/read-json.js';
import { evalSchema, runConfigSchema, type RunConfig } from '../config/schema.js';
import { datasetInfo, prepareDataset } from '../data/index.js';
import { loadNative } from '../native.js';
import type { EvalResult, NativeEvalConfig, TrainSummary } from '../native-types.js';

export interface EvaluateOptions {
  runDir: string;
  /** Which checkpoint of the run: default `best`. */
  checkpoint?: 'best' | 'last' | 'interrupted';
  /** Overrides of the run's evaluation settings (attack radius, steps, ...). */
  eval?: Partial<NativeEvalConfig>;
  device?: 'auto' | 'cpu' | 'cuda';
}

/**
 * Run folders written before a field existed still read: the fields added
 * since get the value that reproduces what those runs did.
 */
function withDefaultsOfLaterVersions(raw: unknown): unknown {
  if (raw === null || typeof raw !== 'object') return raw;
  const r = raw as Record<string, unknown>;
  const dataset = r.dataset !== null && typeof r.dataset === 'object' ? (r.dataset as Record<string, unknown>) : null;
  return {
    ...r,
    evalSchedule: r.evalSchedule ?? { every: 1, lastEpochs: 0 },
    ...(dataset ? { dataset: { ...dataset, dataDir: dataset.dataDir ?? null } } : {}),
  };
}

/**
 * A run folder's config.json as written (fields added since filled in with
 * the values that reproduce the run), not yet validated.
 */
export function readRunConfigRaw(runDir: string): unknown {
  const file = path.join(runDir, 'config.json');
  if (!existsSync(file)) throw new ConfigError([{ path: file, message: 'not found: is this a run folder?' }]);
  const doc = readJsonFile(file, file);
  const raw = doc !== null && typeof doc === 'object' ? (doc as { config?: unknown }).config : undefined;
  return withDefaultsOfLaterVersions(raw);
}

/** Validates a run's config; errors name the file and the field. */
export function parseRunConfig(runDir: string, raw: unknown): RunConfig {
  const parsed = runConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const file = path.join(runDir, 'config.json');
    const err = fromZodError(parsed.error, raw);
    throw new ConfigError(err.issues.map((i) => ({ path: `${file}: config.${i.path}`, message: i.message })));
  }
  return parsed.data;
}

/**
 * A run's config for evaluation: training threads do not matter there, and
 * the run may come from a machine with more cores than this one (which the
 * schema would refuse), so they are dropped.
 */
export function readRunConfig(runDir: string): RunConfig {
  let raw = readRunConfigRaw(runDir);
  if (raw !== null && typeof raw === 'object' && 'threads' in raw) raw = { ...raw, threads: null };
  return parseRunConfig(runDir, raw);
}

/**
 * The epoch a run's checkpoint was evaluated after, so re-evaluation uses the
 * same seed. Checkpoints record it themselves (the core reads it from the
 * file and it wins); summary.json serves older files, and 0 the rest.
 */
function checkpointEpoch(runDir: string, which: 'best' | 'last' | 'interrupted'): number {
  try {
    const summary = readJsonFile(path.join(runDir, 'summary.json'), 'summary.json') as Partial<TrainSummary>;
    const result = which === 'best' ? summary.best : which === 'last' ? summary.last : null;
    return result?.epoch ?? 0;
  } catch {
    return 0;
  }
}

export async function evaluateRun(options: EvaluateOptions): Promise<EvalResult> {
  const config = readRunConfig(options.runDir);
  const which = options.checkpoint ?? 'best';
  const evalMerged = { ...config.eval, ...options.eval };
  const parsedEval = evalSchema.safeParse(evalMerged);
  if (!parsedEval.success) {
    const err = fromZodError(parsedEval.error, evalMerged);
    throw new ConfigError(err.issues.map((i) => ({ path: `eval.${i.path}`, message: i.message })));
  }
  const checkpoint = path.join(options.runDir, 'checkpoints', `${which}.safetensors`);
  const info = datasetInfo(config.dataset.name);
  const data = await prepareDataset(config.dataset.name, config.dataset);
  return loadNative().evaluate(
    checkpoint,
    config.model,
    info.numClasses,
    { ...data.test, channels: data.channels, height: data.height, width: data.width },
    parsedEval.data,
    options.device ?? config.device,
    config.seed,
    checkpointEpoch(options.runDir, which),
  );
}
