/**
 * A grid of configurations (e.g. beta × regulariser, the paper's Fig. 6),
 * each trained with one or more seeds. A sweep is a folder:
 *
 *   <sweep>/grid.json            preset, fixed overrides, axes, seeds, cells
 *   <sweep>/cells/<cell>/        a seeds group per cell (see seeds.ts)
 *   <sweep>/results.json|csv|md  every cell's metrics, mean ± 95% CI
 *   <sweep>/report.html          the cells' trade-off and intervals, every run
 *
 * Resumable after Ctrl-C or kill -9: a cell whose seeds all have completed
 * summaries and whose results are written is not touched again (not even
 * its files); a cell stopped midway keeps its finished seeds, continues an
 * interrupted run from its last completed epoch and trains the rest.
 *
 * With `parallel: N`, up to N runs of the whole sweep (cells and seeds
 * together, one pool) train at once in child processes; a cell whose child
 * dies is `failed` with its error and the others go on. At the end the
 * sweep writes report.html (groups.ts draws the per-cell trade-off).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { ConfigError } from '../config/errors.js';
import type { ConfigOverrides } from '../config/presets.js';
import { parseSetArgument, resolveConfig } from '../config/resolve.js';
import type { RunConfig } from '../config/schema.js';
import { writeFileAtomic, writeJsonAtomic } from './files.js';
import { lockFolder } from './lock.js';
import { autoReport, type AutoReport } from '../report/auto.js';
import { checkParallel, runPool, type ChildRun } from './pool.js';
import { abortReason } from './run.js';
import {
  completedSummary,
  formatMetric,
  parseApiOptions,
  RESULTS_FILE,
  runSeedGroup,
  seedList,
  seedRunName,
  seedsOptionSchema,
  timestampName,
  type MetricRow,
  type SeedsEvent,
} from './seeds.js';
import { csvTable, markdownTable, textTable, type Table } from './tables.js';

type Json = unknown;

export interface SweepAxis {
  /** A dotted config field, e.g. `method.beta`. */
  key: string;
  values: Json[];
}

export interface SweepCell {
  /** Folder name under cells/, e.g. `beta-1_reg-js`. */
  id: string;
  /** The axis values of this cell, by axis key. */
  values: Record<string, Json>;
}

export type SweepEvent =
  | { type: 'cell-start'; cell: string; index: number; total: number; sweepDir: string; cellDir: string }
  | { type: 'cell-skipped'; cell: string; index: number; total: number; sweepDir: string; cellDir: string }
  | { type: 'cell-done'; cell: string; index: number; total: number; sweepDir: string; cellDir: string; metrics: MetricRow[] }
  /** A run of the cell failed in its child process (parallel sweeps); the other cells go on. */
  | { type: 'cell-failed'; cell: string; index: number; total: number; sweepDir: string; cellDir: string; error: string }
  | { type: 'seeds'; cell: string; event: SeedsEvent };

export interface SweepCellResult extends SweepCell {
  dir: string;
  /** `failed`: a run of the cell failed (parallel sweeps; see `error`); the same sweep again retrains what is missing. */
  status: 'completed' | 'cancelled' | 'failed' | 'pending';
  /** True when the cell was complete before this call and left untouched. */
  reused: boolean;
  metrics: MetricRow[];
  /** Why the cell failed, one line per failed seed. */
  error?: string;
}

export interface SweepResult {
  dir: string;
  /** `failed`: every cell ran, and those in `failed` failed. */
  status: 'completed' | 'cancelled' | 'failed';
  axes: SweepAxis[];
  seeds: number[];
  cells: SweepCellResult[];
  /** The ids of the cells that failed. */
  failed: string[];
  files: { json: string; csv: string; markdown: string };
  /** report.html written at the end (unless turned off), or why not. */
  report?: AutoReport;
}

export interface SweepOptions {
  /** Named preset every cell starts from (default `mnist-st-quick`). */
  preset?: string;
  /** Overrides every cell shares, applied before the cell's axis values. */
  overrides?: ConfigOverrides | readonly ConfigOverrides[];
  /** The axes: dotted field → values, e.g. `{ 'method.beta': [1, 2, 4], 'method.reg': ['js', 'l2'] }`. */
  grid?: Record<string, readonly Json[]>;
  /** The axes as the CLI spells them: `method.beta=1,2,4` (values read as JSON when they parse); one value fixes the field in every cell. */
  set?: readonly string[];
  /** N (seeds 0 to N−1) or a list; default: the config's one seed. */
  seeds?: number | readonly number[];
  /** The sweep folder's name under the config's runsDir (default `<time>-sweep`); an existing sweep of that name with the same grid is continued. */
  name?: string;
  /** Or the sweep folder itself. */
  dir?: string;
  /** Continue the sweep in `dir` with its own grid.json (no other grid options). */
  resume?: boolean;
  onEvent?: (event: SweepEvent) => unknown;
  /** Stops the run in progress within a step; resolves with `status: 'cancelled'`. */
  signal?: AbortSignal;
  /**
   * Train up to N runs (cells and seeds) at once, each in its own child
   * process with floor(cores / N) threads unless the config sets `threads`.
   * A cell whose child dies is recorded as failed, with its error, while the
   * others go on (status `failed` at the end). Without it runs train one
   * after the other in this process.
   */
  parallel?: number;
  /** Called with each child's process id (monitoring; tests kill one with it). Parallel sweeps only. */
  onChildPid?: (pid: number, run: ChildRun) => void;
  /** Write report.html (each cell's and the sweep's) at the end (default true). */
  report?: boolean;
}

export const GRID_FILE = 'grid.json';

const sweepSchema = z
  .object({
    preset: z.string().optional(),
    overrides: z.union([z.record(z.string(), z.unknown()), z.array(z.record(z.string(), z.unknown()))]).optional(),
    grid: z.record(z.string().min(1), z.array(z.unknown()).min(1).max(1000)).optional(),
    set: z.array(z.string()).optional(),
    seeds: seedsOptionSchema.optional(),
    name: z.string().min(1).max(200).regex(/^[A-Za-z0-9._-]+$/, 'expected letters, digits, ".", "_" or "-" only').refine((s) => !/^\.+$/.test(s), 'expected a name that is not only dots').optional(),
    dir: z.string().min(1).max(4096).optional(),
    resume: z.boolean().optional(),
    onEvent: z.custom<(e: SweepEvent) => unknown>((v) => typeof v === 'function', 'expected a function').optional(),
    signal: z.custom<AbortSignal>((v) => v instanceof AbortSignal, 'expected an AbortSignal').optional(),
    parallel: z.number().int().min(1).max(64).optional(),
    onChildPid: z.custom<(pid: number, run: ChildRun) => void>((v) => typeof v === 'function', 'expected a function').optional(),
    report: z.boolean().optional(),
  })
  .strict();

/** Splits `1,2,[3,4],"a,b"` on the commas outside brackets and quotes. */
function splitValues(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let quoted = false;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '\\') i++;
      else if (c === '"') quoted = false;
    } else if (c === '"') quoted = true;
    else if (c === '[' || c === '{') depth++;
    else if (c === ']' || c === '}') depth--;
    else if (c === ',' && depth === 0) {
      out.push(text.slice(start, i));
      start = i + 1;
    }
  }
  out.push(text.slice(start));
  return out;
}

/** `method.beta=1,2,4` → the axis `method.beta` with values 1, 2, 4. */
export function parseAxis(arg: string): SweepAxis {
  const eq = arg.indexOf('=');
  if (eq <= 0) throw new ConfigError([{ path: '--set', message: `expected key.path=value1,value2,..., got "${arg}"` }]);
  const key = arg.slice(0, eq);
  const values = splitValues(arg.slice(eq + 1)).map((v) => {
    if (v.trim() === '') throw new ConfigError([{ path: `--set ${key}`, message: `empty value in "${arg}"` }]);
    // The same reading as `train --set`: JSON when it parses, else text.
    let leaf: Record<string, Json> = parseSetArgument(`${key}=${v}`);
    for (const k of key.split('.')) leaf = leaf[k] as Record<string, Json>;
    return leaf as Json;
  });
  return { key, values };
}

function nested(key: string, value: Json): Record<string, Json> {
  return parseSetArgument(`${key}=${JSON.stringify(value)}`);
}

const valueText = (v: Json) => (typeof v === 'string' ? v : JSON.stringify(v));

/** The cells of the grid, first axis slowest, with readable folder names. */
export function gridCells(axes: readonly SweepAxis[]): SweepCell[] {
  const last = axes.map((a) => a.key.split('.').at(-1)!);
  const short = axes.map((a, i) => (last.filter((l) => l === last[i]).length > 1 ? a.key : last[i]!));
  let cells: SweepCell[] = [{ id: '', values: {} }];
  axes.forEach((axis, i) => {
    cells = cells.flatMap((c) =>
      axis.values.map((v) => {
        const part = `${short[i]}-${valueText(v)}`.replace(/[^A-Za-z0-9._=-]+/g, '_');
        return { id: c.id ? `${c.id}_${part}` : part, values: { ...c.values, [axis.key]: v } };
      }),
    );
  });
  const ids = new Set(cells.map((c) => c.id));
  if (ids.size !== cells.length) throw new ConfigError([{ path: '--set', message: 'two cells of the grid would share a folder name (a value listed twice?)' }]);
  return cells;
}

interface GridFile {
  kind: 'st-native-sweep';
  version: 1;
  preset: string | null;
  overrides: Json[];
  axes: SweepAxis[];
  seeds: number[];
  cells: SweepCell[];
}

function readGrid(file: string): GridFile {
  try {
    const g = JSON.parse(readFileSync(file, 'utf8')) as GridFile;
    if (g.kind !== 'st-native-sweep' || !Array.isArray(g.axes)) throw new Error('not a sweep grid');
    return g;
  } catch (e) {
    throw new ConfigError([{ path: file, message: `cannot read the sweep's grid (${(e as Error).message})` }]);
  }
}

/**
 * Runs the grid (see the file's comment). Rejects with ConfigError before
 * any work for a bad option or cell config (naming the cell), or when an
 * existing sweep of that name has another grid.
 */
export async function sweep(rawOptions: SweepOptions): Promise<SweepResult> {
  const options = parseApiOptions(sweepSchema, rawOptions);
  if (options.signal?.aborted) throw abortReason(options.signal);
  let grid: GridFile;
  let dir: string;
  if (options.resume) {
    if (options.dir === undefined) throw new ConfigError([{ path: 'options.dir', message: 'resume needs the sweep folder' }]);
    for (const k of ['preset', 'overrides', 'grid', 'set', 'seeds', 'name'] as const) {
      if (options[k] !== undefined && !(Array.isArray(options[k]) && options[k].length === 0)) {
        throw new ConfigError([{ path: `options.${k}`, message: "a resumed sweep runs its own grid.json; leave it out (or start a new sweep)" }]);
      }
    }
    dir = path.resolve(options.dir);
    grid = readGrid(path.join(dir, GRID_FILE));
  } else {
    const given = (options.overrides === undefined ? [] : Array.isArray(options.overrides) ? options.overrides : [options.overrides]) as Json[];
    // A `set` with one value fixes that field in every cell; with more it is an axis.
    const parsed = (options.set ?? []).map(parseAxis);
    const overrides = [...given, ...parsed.filter((a) => a.values.length === 1).map((a) => nested(a.key, a.values[0]))];
    const axes: SweepAxis[] = [
      ...Object.entries(options.grid ?? {}).map(([key, values]) => ({ key, values: [...values] })),
      ...parsed.filter((a) => a.values.length > 1),
    ];
    if (axes.length === 0) throw new ConfigError([{ path: '--set', message: 'expected at least one axis with two or more values, e.g. --set method.beta=1,2,4' }]);
    const dupe = axes.find((a, i) => axes.findIndex((b) => b.key === a.key) !== i);
    if (dupe) throw new ConfigError([{ path: `--set ${dupe.key}`, message: 'given twice: list all its values in one --set' }]);
    const base = resolveConfig({ preset: options.preset, overrides });
    const seeds = options.seeds === undefined ? [base.seed] : seedList(options.seeds);
    grid = { kind: 'st-native-sweep', version: 1, preset: options.preset ?? null, overrides, axes, seeds, cells: gridCells(axes) };
    dir = path.resolve(options.dir ?? path.join(base.runsDir, options.name ?? timestampName('sweep')));
  }
  // Every cell's config, validated before anything runs.
  const configs = grid.cells.map((cell) => {
    try {
      return resolveConfig({ preset: grid.preset ?? undefined, overrides: [...grid.overrides, ...Object.entries(cell.values).map(([k, v]) => nested(k, v))] });
    } catch (e) {
      if (e instanceof ConfigError) throw new ConfigError(e.issues.map((i) => ({ path: `cell ${cell.id}: ${i.path}`, message: i.message })));
      throw e;
    }
  });
  const gridFile = path.join(dir, GRID_FILE);
  if (existsSync(gridFile)) {
    const recorded = readGrid(gridFile);
    const same = (a: GridFile, b: GridFile) => JSON.stringify([a.preset, a.overrides, a.axes, a.seeds]) === JSON.stringify([b.preset, b.overrides, b.axes, b.seeds]);
    if (!same(recorded, grid)) {
      throw new ConfigError([{ path: gridFile, message: 'this sweep was made with another grid, preset, overrides or seeds; continue it with `sweep --resume DIR`, or choose another --name' }]);
    }
  } else if (existsSync(dir) && (options.resume || readdirNonEmpty(dir))) {
    throw new ConfigError([{ path: dir, message: `exists and is not a sweep (no ${GRID_FILE}); choose another name` }]);
  }
  mkdirSync(dir, { recursive: true });
  const release = lockFolder(dir);
  try {
    if (!existsSync(gridFile)) writeJsonAtomic(gridFile, grid);
    return await runGrid(grid, configs, dir, options);
  } finally {
    release();
  }
}

function readdirNonEmpty(dir: string): boolean {
  try {
    return readdirSync(dir).length > 0;
  } catch {
    return false;
  }
}

/** A cell finished before: all its seeds completed and its results written for exactly those seeds. */
function finishedCell(cellDir: string, seeds: readonly number[], config: RunConfig): MetricRow[] | null {
  try {
    const r = JSON.parse(readFileSync(path.join(cellDir, RESULTS_FILE), 'utf8')) as { status?: string; seeds?: number[]; metrics?: MetricRow[] };
    if (r.status !== 'completed' || JSON.stringify(r.seeds) !== JSON.stringify(seeds) || !Array.isArray(r.metrics)) return null;
    if (!seeds.every((s) => completedSummary(path.join(cellDir, seedRunName(s)), config.epochs))) return null;
    return r.metrics;
  } catch {
    return null;
  }
}

async function runGrid(grid: GridFile, configs: RunConfig[], dir: string, options: Pick<SweepOptions, 'onEvent' | 'signal' | 'parallel' | 'onChildPid' | 'report'>): Promise<SweepResult> {
  const cells: SweepCellResult[] = grid.cells.map((c) => ({ ...c, dir: path.join(dir, 'cells', c.id), status: 'pending', reused: false, metrics: [] }));
  const total = cells.length;
  const pool = options.parallel !== undefined ? runPool(checkParallel(options.parallel), options.onChildPid) : undefined;
  let cancelled = false;

  const runCell = async (cell: SweepCellResult, index: number): Promise<void> => {
    const common = { cell: cell.id, index, total, sweepDir: dir, cellDir: cell.dir };
    const done = finishedCell(cell.dir, grid.seeds, configs[index]!);
    if (done) {
      Object.assign(cell, { status: 'completed', reused: true, metrics: done });
      await options.onEvent?.({ type: 'cell-skipped', ...common });
      return;
    }
    if (options.signal?.aborted) {
      cancelled = true;
      return;
    }
    // Said when the cell's first seed starts (or is found finished), not
    // when it is queued: with a pool all cells are queued at once.
    let started = false;
    const start = async () => {
      if (started) return;
      started = true;
      await options.onEvent?.({ type: 'cell-start', ...common });
    };
    mkdirSync(cell.dir, { recursive: true });
    const r = await runSeedGroup(configs[index]!, grid.seeds, cell.dir, {
      signal: options.signal,
      cell: cell.id,
      ...(pool ? { pool } : {}),
      report: options.report,
      onEvent: async (event) => {
        if (event.type === 'seed-start' || event.type === 'seed-skipped') await start();
        await options.onEvent?.({ type: 'seeds', cell: cell.id, event });
      },
    });
    Object.assign(cell, { status: r.status, metrics: r.metrics });
    if (r.status === 'failed') {
      cell.error = r.failures.map((f) => `seed ${f.seed}: ${f.error}`).join('\n');
      await options.onEvent?.({ type: 'cell-failed', ...common, error: cell.error });
      return;
    }
    if (r.status !== 'completed') {
      cancelled = true;
      return;
    }
    await start();
    await options.onEvent?.({ type: 'cell-done', ...common, metrics: r.metrics });
  };

  if (pool) {
    await Promise.all(cells.map((cell, index) => runCell(cell, index)));
  } else {
    for (const [index, cell] of cells.entries()) {
      await runCell(cell, index);
      if (cancelled) break;
    }
  }
  const failed = cells.filter((c) => c.status === 'failed').map((c) => c.id);
  const result: SweepResult = {
    dir,
    status: cancelled ? 'cancelled' : failed.length > 0 ? 'failed' : 'completed',
    axes: grid.axes,
    seeds: grid.seeds,
    cells,
    failed,
    files: { json: path.join(dir, RESULTS_FILE), csv: path.join(dir, 'results.csv'), markdown: path.join(dir, 'results.md') },
  };
  writeSweepResults(result);
  if (options.report !== false && cells.some((c) => c.metrics.length > 0)) result.report = await autoReport(dir);
  return result;
}

/** The metrics shown in the table: the reported accuracies (all metrics are in the JSON and CSV). */
const TABLE_METRICS = ['clean', 'robust'];

export function sweepTable(result: Pick<SweepResult, 'axes' | 'cells'>): Table {
  const labels = TABLE_METRICS.map((k) => result.cells.flatMap((c) => c.metrics).find((m) => m.key === k)?.label ?? k);
  return {
    header: [...result.axes.map((a) => a.key), ...labels, 'n', 'status'],
    numeric: [...result.axes.map(() => false), ...labels.map(() => true), true, false],
    rows: result.cells.map((c) => [
      ...result.axes.map((a) => valueText(c.values[a.key])),
      ...TABLE_METRICS.map((k) => {
        const m = c.metrics.find((x) => x.key === k);
        return m ? formatMetric(m) : '-';
      }),
      String(c.metrics[0]?.n ?? 0),
      c.status,
    ]),
  };
}

export function sweepText(result: SweepResult): string {
  return textTable(sweepTable(result));
}

function writeSweepResults(result: SweepResult): void {
  const rel = (p: string) => path.relative(result.dir, p);
  writeJsonAtomic(result.files.json, {
    kind: 'st-native-sweep-results',
    version: 1,
    status: result.status,
    axes: result.axes,
    seeds: result.seeds,
    interval: 'Student t, 95%, n-1 degrees of freedom; ci95 is the half-width',
    failed: result.failed,
    cells: result.cells.map((c) => ({ id: c.id, dir: rel(c.dir), values: c.values, status: c.status, ...(c.error !== undefined ? { error: c.error } : {}), metrics: c.metrics })),
  });
  const keys = [...new Set(result.cells.flatMap((c) => c.metrics.map((m) => m.key)))];
  writeFileAtomic(
    result.files.csv,
    csvTable(
      ['cell', ...result.axes.map((a) => a.key), 'status', 'n', ...keys.flatMap((k) => [`${k}_mean`, `${k}_sd`, `${k}_ci95`, `${k}_low`, `${k}_high`])],
      result.cells.map((c) => [
        c.id,
        ...result.axes.map((a) => valueText(c.values[a.key])),
        c.status,
        c.metrics[0]?.n ?? 0,
        ...keys.flatMap((k) => {
          const m = c.metrics.find((x) => x.key === k);
          return m ? [m.mean, m.sd, m.ci95, m.low, m.high] : [null, null, null, null, null];
        }),
      ]),
    ),
  );
  writeFileAtomic(
    result.files.markdown,
    [
      `# Sweep over ${result.axes.map((a) => a.key).join(' × ')}`,
      '',
      markdownTable(sweepTable(result)),
      '',
      `- accuracies of the best checkpoint on the test split, mean ± half-width of the 95% confidence interval (Student t, n−1 degrees of freedom) over seeds ${result.seeds.join(', ')}`,
      `- each cell's runs and per-seed table: cells/<cell>/ (results.md there); all metrics: results.csv`,
      ...(result.status === 'cancelled' ? ['- stopped before the end: `st-native sweep --resume <this folder>` continues it'] : []),
      ...result.cells.filter((c) => c.error !== undefined).map((c) => `- cell ${c.id} failed: ${c.error!.split('\n')[0]} (\`st-native sweep --resume <this folder>\` trains it again)`),
      '',
    ].join('\n'),
  );
}
