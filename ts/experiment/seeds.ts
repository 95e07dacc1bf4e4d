/**
 * One configuration trained with several seeds, reported as the paper
 * reports it: every metric as mean ± the Student-t 95% interval over the
 * seeds. A seeds group is a folder:
 *
 *   <group>/seeds.json      the base config and the seeds (what was asked)
 *   <group>/seed-<s>/       one ordinary run folder per seed
 *   <group>/results.json    per-seed values and each metric's summary
 *   <group>/results.csv     one line per metric (mean, sd, interval)
 *   <group>/runs.csv        one line per seed
 *   <group>/results.md      the table, and how it was made
 *
 *   <group>/report.html     written at the end (unless `report: false`)
 *
 * Resumable: running the same group again skips every seed whose run has a
 * completed summary with all its epochs (a folder alone proves nothing: a
 * killed run leaves one); an interrupted run continues from its resume
 * checkpoint (its last completed epoch), and one without any is trained
 * again from scratch after removing what it left.
 *
 * With `parallel: N` up to N seeds train at once, each in its own child
 * process (pool.ts); a seed whose child dies is recorded as failed and the
 * others finish.
 */
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { ConfigError, fromZodError } from '../config/errors.js';
import type { ConfigOverrides } from '../config/presets.js';
import { resolveConfig } from '../config/resolve.js';
import type { RunConfig } from '../config/schema.js';
import type { TrainEvent, TrainSummary } from '../native-types.js';
import { writeFileAtomic, writeJsonAtomic } from './files.js';
import { lockFolder } from './lock.js';
import { autoReport, type AutoReport } from '../report/auto.js';
import { checkParallel, runPool, type ChildRun, type RunPool } from './pool.js';
import { configDifferences, planResume, RESUME_FILE, type ResumePlan } from './resume.js';
import { abortReason, runExperiment, type RunOptions } from './run.js';
import { summarize, type MetricSummary } from './stats.js';
import { csvTable, markdownTable, percentWithInterval, textTable, valueWithInterval, type Table } from './tables.js';

// ------------------------------------------------------------ metrics of one run

export type MetricKind = 'accuracy' | 'epoch' | 'seconds';

export interface MetricDef {
  key: string;
  /** Column heading, e.g. `clean`, `PGD-20`. */
  label: string;
  kind: MetricKind;
  description: string;
}

/** What a run reports: the best checkpoint on the test split, the last epoch, and the cost. */
export function runMetrics(summary: TrainSummary): { defs: MetricDef[]; values: Record<string, number> } {
  const report = summary.test ?? summary.best;
  const defs: MetricDef[] = [];
  const values: Record<string, number> = {};
  const add = (def: MetricDef, value: number | undefined) => {
    if (value === undefined || !Number.isFinite(value)) return;
    defs.push(def);
    values[def.key] = value;
  };
  if (report) {
    add({ key: 'clean', label: 'clean', kind: 'accuracy', description: `clean accuracy of the best checkpoint on the test split (${report.samples} images)` }, report.cleanAcc);
    add({ key: 'robust', label: report.attack, kind: 'accuracy', description: `${report.attack} accuracy of the best checkpoint on the test split` }, report.robustAcc);
  }
  if (summary.last) {
    add({ key: 'lastClean', label: 'last clean', kind: 'accuracy', description: 'clean accuracy after the last epoch' }, summary.last.cleanAcc);
    add({ key: 'lastRobust', label: `last ${summary.last.attack}`, kind: 'accuracy', description: `${summary.last.attack} accuracy after the last epoch` }, summary.last.robustAcc);
  }
  if (summary.best) add({ key: 'bestEpoch', label: 'best epoch', kind: 'epoch', description: `the epoch selected (by ${summary.best.attack} on the ${summary.selectedOn} split)` }, summary.best.epoch);
  add({ key: 'seconds', label: 'seconds', kind: 'seconds', description: 'training time, evaluation included' }, summary.seconds);
  return { defs, values };
}

export interface MetricRow extends MetricSummary {
  key: string;
  label: string;
  kind: MetricKind;
  description: string;
  /** One value per seed, in the order of `seeds`. */
  values: number[];
}

/** Each metric every run has, summarised over the runs. */
export function summarizeRuns(summaries: readonly TrainSummary[]): MetricRow[] {
  const per = summaries.map(runMetrics);
  if (per.length === 0) return [];
  return per[0]!.defs
    .filter((d) => per.every((p) => d.key in p.values))
    .map((d) => {
      const values = per.map((p) => p.values[d.key]!);
      return { key: d.key, label: d.label, kind: d.kind, description: d.description, values, ...summarize(values) };
    });
}

/** A metric's mean ± interval in its unit. */
export function formatMetric(row: Pick<MetricRow, 'kind'> & MetricSummary): string {
  return row.kind === 'accuracy' ? percentWithInterval(row) : valueWithInterval(row, row.kind === 'seconds' ? 0 : 1);
}

// ------------------------------------------------------------ the group

export type SeedsEvent =
  /** `resumed`: an interrupted run continued from its last completed epoch. */
  | { type: 'seed-start'; seed: number; index: number; total: number; runDir: string; resumed?: boolean }
  | { type: 'seed-failed'; seed: number; index: number; total: number; runDir: string; error: string }
  | { type: 'seed-skipped'; seed: number; index: number; total: number; runDir: string; summary: TrainSummary }
  | { type: 'seed-done'; seed: number; index: number; total: number; runDir: string; summary: TrainSummary }
  | { type: 'train'; seed: number; event: TrainEvent };

export interface SeedRun {
  seed: number;
  runDir: string;
  summary: TrainSummary;
  /** True when the run was already complete and not trained again. */
  reused: boolean;
}

/** A seed whose run failed in its child process (parallel runs only). */
export interface SeedFailure {
  seed: number;
  runDir: string | null;
  error: string;
}

export interface SeedsResult {
  dir: string;
  /**
   * `cancelled` when the signal stopped it: the results cover the seeds
   * finished so far; `failed` when a parallel run failed (see `failures`)
   * and the others finished.
   */
  status: 'completed' | 'cancelled' | 'failed';
  seeds: number[];
  runs: SeedRun[];
  failures: SeedFailure[];
  /** report.html written at the end (unless turned off), or why not. */
  report?: AutoReport;
  metrics: MetricRow[];
  files: { json: string; csv: string; runsCsv: string; markdown: string };
}

export const SEEDS_FILE = 'seeds.json';
export const RESULTS_FILE = 'results.json';

/** Fields that may differ between the seeds of a group, or between attempts at it. */
const FREE_FIELDS = new Set(['seed', 'runsDir', 'runName', 'device', 'threads']);

export const seedRunName = (seed: number) => `seed-${seed}`;

/** The config as a group records it: what makes its runs comparable. */
function groupConfig(config: RunConfig): RunConfig {
  return { ...config, runName: null };
}

/**
 * Refuses to continue `dir` with a different config (besides the free
 * fields), naming each field with both values.
 */
function checkSameConfig(file: string, recorded: RunConfig, now: RunConfig): void {
  const differ = configDifferences(recorded, now).filter((d) => !FREE_FIELDS.has(d.path.split('.')[0]!));
  if (differ.length === 0) return;
  throw new ConfigError(
    differ.map((d) => ({ path: d.path, message: `differs from ${file} (recorded: ${d.run}, now: ${d.now}); continue it with the same settings, or start a new folder` })),
  );
}

/** The run's summary when it trained all its epochs, else null. */
export function completedSummary(runDir: string, epochs: number): TrainSummary | null {
  try {
    const s = JSON.parse(readFileSync(path.join(runDir, 'summary.json'), 'utf8')) as TrainSummary;
    if (s.status === 'completed' && typeof s.epochsCompleted === 'number' && s.epochsCompleted >= epochs) return s;
  } catch {
    /* no summary, or a torn one: not finished */
  }
  return null;
}

export interface GroupHooks {
  onEvent?: (e: SeedsEvent) => unknown;
  signal?: AbortSignal;
  /**
   * Train the seeds concurrently, each in its own child process (pool.ts).
   * A run that fails there (a child killed, a native crash) is recorded in
   * `failures` and the other seeds go on; without a pool the first failure
   * rejects, as a single run's would.
   */
  pool?: RunPool;
  /** The sweep cell this group is (for `onChildPid`). */
  cell?: string;
  /** Write report.html into the group folder at the end (default true). */
  report?: boolean;
}

type SeedOutcome =
  | { kind: 'done'; run: SeedRun }
  | { kind: 'cancelled' }
  | { kind: 'failed'; failure: SeedFailure };

/**
 * A plan to continue the seed's interrupted run from its resume checkpoint
 * (the end of its last completed epoch), or null when there is none or the
 * run was made with other settings (then it is trained from scratch).
 */
function resumeSeed(runDir: string, wanted: RunConfig): ResumePlan | null {
  if (!existsSync(path.join(runDir, RESUME_FILE))) return null;
  try {
    const plan = planResume(runDir, []);
    const differ = configDifferences(plan.config, wanted).filter((d) => !FREE_FIELDS.has(d.path.split('.')[0]!) || d.path === 'seed');
    return differ.length === 0 ? plan : null;
  } catch {
    return null;
  }
}

/**
 * Trains the seeds of `config` missing in `dir` and writes the results.
 * The caller holds the folder's lock. Used by trainSeeds and by each cell
 * of a sweep.
 */
export async function runSeedGroup(config: RunConfig, seeds: readonly number[], dir: string, hooks: GroupHooks = {}): Promise<SeedsResult> {
  const seedsFile = path.join(dir, SEEDS_FILE);
  if (existsSync(seedsFile)) {
    const recorded = (JSON.parse(readFileSync(seedsFile, 'utf8')) as { config: RunConfig }).config;
    checkSameConfig(seedsFile, recorded, config);
  }
  writeJsonAtomic(seedsFile, { kind: 'st-native-seeds', version: 1, seeds, config: groupConfig(config) });
  const emit = (e: SeedsEvent) => hooks.onEvent?.(e);
  const { pool, signal } = hooks;

  const trainSeed = async (seed: number, index: number): Promise<SeedOutcome> => {
    const runDir = path.join(dir, seedRunName(seed));
    const done = completedSummary(runDir, config.epochs);
    if (done) {
      await emit({ type: 'seed-skipped', seed, index, total: seeds.length, runDir, summary: done });
      return { kind: 'done', run: { seed, runDir, summary: done, reused: true } };
    }
    if (signal?.aborted) return { kind: 'cancelled' };
    const runConfig: RunConfig = { ...config, seed, runsDir: dir, runName: seedRunName(seed) };
    // An interrupted run continues from its last completed epoch (bit for
    // bit the uninterrupted run); anything else it left is started over.
    const resume = resumeSeed(runDir, runConfig);
    if (!resume) rmSync(runDir, { recursive: true, force: true });
    await emit({ type: 'seed-start', seed, index, total: seeds.length, runDir, ...(resume ? { resumed: true } : {}) });
    const onEvent = (event: TrainEvent) => hooks.onEvent?.({ type: 'train', seed, event });
    try {
      const result = await runExperiment(resume ? resume.config : runConfig, {
        signal,
        onEvent,
        ...(resume ? { resume } : {}),
        ...(pool
          ? {
              isolate: true,
              // A resumed run keeps its recorded threads (the reduction order).
              threads: (resume ? resume.config.threads : config.threads) ?? pool.threads,
              onChildPid: (pid: number) => pool.onChildPid?.(pid, { ...(hooks.cell !== undefined ? { cell: hooks.cell } : {}), seed }),
            }
          : {}),
      } as RunOptions);
      if (result.summary.status !== 'completed') return { kind: 'cancelled' };
      const run: SeedRun = { seed, runDir: result.runDir, summary: result.summary, reused: false };
      await emit({ type: 'seed-done', seed, index, total: seeds.length, runDir: result.runDir, summary: result.summary });
      return { kind: 'done', run };
    } catch (e) {
      if (!pool) throw e;
      const failure: SeedFailure = { seed, runDir: (e as { runDir?: string }).runDir ?? (existsSync(runDir) ? runDir : null), error: e instanceof Error ? e.message : String(e) };
      await emit({ type: 'seed-failed', seed, index, total: seeds.length, runDir, error: failure.error });
      return { kind: 'failed', failure };
    }
  };

  const outcomes: SeedOutcome[] = [];
  if (pool) {
    // Every seed queued at once; the pool (shared with the other cells of a sweep) runs N at a time.
    outcomes.push(...(await Promise.all(seeds.map((seed, index) => pool.limit(() => trainSeed(seed, index))))));
  } else {
    for (const [index, seed] of seeds.entries()) {
      const o = await trainSeed(seed, index);
      outcomes.push(o);
      if (o.kind === 'cancelled') break;
    }
  }
  const runs = outcomes.flatMap((o) => (o.kind === 'done' ? [o.run] : []));
  const failures = outcomes.flatMap((o) => (o.kind === 'failed' ? [o.failure] : []));
  const status: SeedsResult['status'] = outcomes.some((o) => o.kind === 'cancelled') || outcomes.length < seeds.length ? 'cancelled' : failures.length > 0 ? 'failed' : 'completed';
  const result: SeedsResult = {
    dir,
    status,
    seeds: [...seeds],
    runs,
    failures,
    metrics: summarizeRuns(runs.map((r) => r.summary)),
    files: {
      json: path.join(dir, RESULTS_FILE),
      csv: path.join(dir, 'results.csv'),
      runsCsv: path.join(dir, 'runs.csv'),
      markdown: path.join(dir, 'results.md'),
    },
  };
  writeSeedsResults(result, config);
  if (hooks.report !== false && runs.length > 0) result.report = await autoReport(dir);
  return result;
}

/** The metric table: one line per metric, mean ± interval, SD, and every seed's value. */
export function seedsTable(result: Pick<SeedsResult, 'metrics' | 'runs'>): Table {
  const single = (kind: MetricKind, v: number) => formatMetric({ kind, n: 1, mean: v, sd: null, ci95: null, low: null, high: null });
  return {
    header: ['metric', 'mean ± 95% CI', 'SD', 'n', ...result.runs.map((r) => `seed ${r.seed}`)],
    numeric: [false, true, true, true, ...result.runs.map(() => true)],
    rows: result.metrics.map((m) => [
      m.label,
      formatMetric(m),
      m.sd === null ? '-' : m.kind === 'accuracy' ? `${(100 * m.sd).toFixed(1)}%` : m.sd.toFixed(1),
      String(m.n),
      ...m.values.map((v) => single(m.kind, v)),
    ]),
  };
}

export function seedsText(result: SeedsResult): string {
  return textTable(seedsTable(result));
}

function writeSeedsResults(result: SeedsResult, config: RunConfig): void {
  const rel = (p: string) => path.relative(result.dir, p);
  writeJsonAtomic(result.files.json, {
    kind: 'st-native-seeds-results',
    version: 1,
    status: result.status,
    seeds: result.seeds,
    interval: 'Student t, 95%, n-1 degrees of freedom; ci95 is the half-width',
    metrics: result.metrics,
    runs: result.runs.map((r) => ({ seed: r.seed, runDir: rel(r.runDir), ...runMetrics(r.summary).values })),
    failures: result.failures.map((f) => ({ seed: f.seed, runDir: f.runDir === null ? null : rel(f.runDir), error: f.error })),
  });
  writeFileAtomic(
    result.files.csv,
    csvTable(
      ['metric', 'label', 'n', 'mean', 'sd', 'ci95', 'low', 'high'],
      result.metrics.map((m) => [m.key, m.label, m.n, m.mean, m.sd, m.ci95, m.low, m.high]),
    ),
  );
  const keys = result.metrics.map((m) => m.key);
  writeFileAtomic(
    result.files.runsCsv,
    csvTable(['seed', 'runDir', ...keys], result.runs.map((r) => [r.seed, rel(r.runDir), ...keys.map((k) => runMetrics(r.summary).values[k])])),
  );
  const finished = result.runs.length;
  writeFileAtomic(
    result.files.markdown,
    [
      `# ${config.method.name} on ${config.dataset.name} (${config.model}), ${finished} seed${finished === 1 ? '' : 's'}`,
      '',
      markdownTable(seedsTable(result)),
      '',
      `- mean ± half-width of the 95% confidence interval of the mean (Student t, n−1 degrees of freedom); SD is the sample standard deviation`,
      `- seeds ${result.seeds.join(', ')}${result.status === 'cancelled' ? ` (stopped: ${finished} finished)` : ''}; ${config.epochs} epoch${config.epochs === 1 ? "" : "s"} each`,
      ...result.failures.map((f) => `- seed ${f.seed} failed: ${f.error.split('\n')[0]} (the same command again trains it)`),
      ...result.metrics.map((m) => `- ${m.label}: ${m.description}`),
      '',
    ].join('\n'),
  );
}

// ------------------------------------------------------------ the API

export interface TrainSeedsOptions {
  /** Named preset to start from (default `mnist-st-quick`). */
  preset?: string;
  /** Overrides on the preset, applied in order; `seed` is set per run. */
  overrides?: ConfigOverrides | readonly ConfigOverrides[];
  /** N (seeds 0 to N−1) or the seeds themselves. */
  seeds: number | readonly number[];
  /**
   * The group folder's name under the config's `runsDir` (default
   * `<time>-<method>-seeds`). An existing group of that name is continued.
   */
  name?: string;
  /** Or the group folder itself (wins over `name`). */
  dir?: string;
  onEvent?: (event: SeedsEvent) => unknown;
  /** Stops the seed in progress within one step; resolves with `status: 'cancelled'`. */
  signal?: AbortSignal;
  /**
   * Train up to N seeds at once, each in its own child process with
   * floor(cores / N) threads unless the config sets `threads`. A run whose
   * child dies is recorded in `failures` (status `failed`) while the others
   * finish. Without it seeds train one after the other in this process.
   */
  parallel?: number;
  /** Called with each child's process id (monitoring; tests kill one with it). Parallel runs only. */
  onChildPid?: (pid: number, run: ChildRun) => void;
  /** Write report.html into the group folder at the end (default true). */
  report?: boolean;
}

const seedValue = z.number().int().min(Number.MIN_SAFE_INTEGER).max(Number.MAX_SAFE_INTEGER);
const folderName = z.string().min(1).max(200).regex(/^[A-Za-z0-9._-]+$/, 'expected letters, digits, ".", "_" or "-" only').refine((s) => !/^\.+$/.test(s), 'expected a name that is not only dots');

export const seedsOptionSchema = z.union([
  z.number().int().min(1).max(1000),
  z
    .array(seedValue)
    .min(1)
    .max(1000)
    .refine((a) => new Set(a).size === a.length, 'expected every seed once'),
]);

const trainSeedsSchema = z
  .object({
    preset: z.string().optional(),
    overrides: z.union([z.record(z.string(), z.unknown()), z.array(z.record(z.string(), z.unknown()))]).optional(),
    seeds: seedsOptionSchema,
    name: folderName.optional(),
    dir: z.string().min(1).max(4096).optional(),
    onEvent: z.custom<(e: SeedsEvent) => unknown>((v) => typeof v === 'function', 'expected a function').optional(),
    signal: z.custom<AbortSignal>((v) => v instanceof AbortSignal, 'expected an AbortSignal').optional(),
    parallel: z.number().int().min(1).max(64).optional(),
    onChildPid: z.custom<(pid: number, run: ChildRun) => void>((v) => typeof v === 'function', 'expected a function').optional(),
    report: z.boolean().optional(),
  })
  .strict();

/** Checks options of the public API for JavaScript callers; issues are named `options.<field>`. */
export function parseApiOptions<T>(schema: z.ZodType<T>, options: unknown): T {
  const parsed = schema.safeParse(options);
  if (parsed.success) return parsed.data;
  const err = fromZodError(parsed.error, options);
  throw new ConfigError(err.issues.map((i) => ({ path: i.path ? `options.${i.path}` : 'options', message: i.message })));
}

/** `5` → seeds 0..4; a list is taken as it is. */
export function seedList(seeds: number | readonly number[]): number[] {
  return typeof seeds === 'number' ? Array.from({ length: seeds }, (_, i) => i) : [...seeds];
}

export function timestampName(suffix: string, d = new Date()): string {
  return `${d.toISOString().replace(/[:]/g, '-').replace(/\..*$/, '')}-${suffix}`;
}

/**
 * Trains one configuration with several seeds (see the file's comment for
 * the folder). Rejects with ConfigError before any work for bad options, or
 * when an existing group was made with other settings.
 */
export async function trainSeeds(rawOptions: TrainSeedsOptions): Promise<SeedsResult> {
  const options = parseApiOptions(trainSeedsSchema, rawOptions);
  if (options.signal?.aborted) throw abortReason(options.signal);
  const overrides = options.overrides === undefined ? [] : Array.isArray(options.overrides) ? options.overrides : [options.overrides];
  const config = resolveConfig({ preset: options.preset, overrides });
  const dir = path.resolve(options.dir ?? path.join(config.runsDir, options.name ?? timestampName(`${config.method.name}-seeds`)));
  if (existsSync(dir) && !existsSync(path.join(dir, SEEDS_FILE))) {
    throw new ConfigError([{ path: dir, message: `exists and is not a seeds group (no ${SEEDS_FILE}); choose another name` }]);
  }
  mkdirSync(dir, { recursive: true });
  const release = lockFolder(dir);
  try {
    return await runSeedGroup(config, seedList(options.seeds), dir, {
      onEvent: options.onEvent,
      signal: options.signal,
      ...(options.parallel !== undefined ? { pool: runPool(checkParallel(options.parallel), options.onChildPid) } : {}),
      ...(options.report !== undefined ? { report: options.report } : {}),
    });
  } finally {
    release();
  }
}
