/**
 * The runs on disk, as a table: `listRuns` finds every run folder under a
 * folder (seeds groups and sweeps included), with its preset, method,
 * model, dataset, epochs, its own clean and robust accuracy, and the
 * PGD-20 and AutoAttack accuracies of its evaluations; `compareRuns` puts
 * runs side by side with the config fields that differ and the attack rows
 * they share.
 *
 * Evaluations are read from every output a run folder holds: the current
 * `eval-<checkpoint>.json` and the earlier ones kept in `eval-history/`.
 * For each attack the newest evaluation of the best checkpoint wins (else
 * the newest of any checkpoint), so re-evaluating never hides a number.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../config/errors.js';
import { DEFAULT_PRESET, presets } from '../config/presets.js';
import { resolveConfig } from '../config/resolve.js';
import type { RunConfig } from '../config/schema.js';
import type { AttackSpec, TrainSummary } from '../native-types.js';
import { didYouMean } from '../suggest.js';
import type { MetricRow } from './seeds.js';
import { summarize } from './stats.js';

/** One attack's accuracy as the newest evaluation of a run reports it. */
export interface AttackRow {
  name: string;
  accuracy: number;
  correct: number;
  samples: number;
  checkpoint: string;
  /** When the evaluation was made (its provenance), and its file relative to the run. */
  time: string;
  file: string;
  spec: AttackSpec;
}

export interface RunRow {
  runDir: string;
  /** The run folder relative to the listed folder (`betas/cells/beta-1/seed-0`). */
  name: string;
  status: 'completed' | 'cancelled' | 'failed' | 'running or killed';
  /** The preset named on its command line, else the one whose model, dataset and method it has, else null. */
  preset: string | null;
  method: string;
  model: string;
  dataset: string;
  epochs: number;
  epochsCompleted: number;
  /** The run's own evaluation of its best checkpoint on the test split. */
  clean: number | null;
  robust: number | null;
  robustAttack: string | null;
  /** PGD-20 and AutoAttack (standard, L∞) from its evaluations, when evaluated. */
  pgd20: number | null;
  aa: number | null;
  attacks: AttackRow[];
  config: RunConfig;
}

const SKIP = new Set(['checkpoints', 'eval-history', 'node_modules', '.git']);
const MAX_DEPTH = 6;

/** Folders holding a config.json under `root` (the root itself included). */
function findRunDirs(root: string, depth = 0): string[] {
  if (existsSync(path.join(root, 'config.json'))) return [root];
  if (depth >= MAX_DEPTH) return [];
  let names: string[];
  try {
    names = readdirSync(root).sort();
  } catch {
    return [];
  }
  return names
    .filter((n) => !SKIP.has(n) && !n.startsWith('.'))
    .flatMap((n) => {
      const p = path.join(root, n);
      try {
        return statSync(p).isDirectory() ? findRunDirs(p, depth + 1) : [];
      } catch {
        return [];
      }
    });
}

function readJson(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return null;
  }
}

interface EvalFile {
  attacks?: { name: string; accuracy: number; correct: number; samples: number; spec: AttackSpec }[];
  provenance?: { time?: string };
  target?: { checkpoint?: string };
}

/** Every evaluation output of a run: eval-*.json beside its checkpoints and eval-history/*.json. */
export function runEvaluations(runDir: string): { file: string; data: EvalFile }[] {
  const list = (dir: string) => {
    try {
      return readdirSync(dir)
        .filter((n) => /^eval-.*\.json$/.test(n))
        .map((n) => path.join(dir, n));
    } catch {
      return [];
    }
  };
  return [...list(runDir), ...list(path.join(runDir, 'eval-history'))]
    .map((file) => ({ file: path.relative(runDir, file), data: readJson(file) as EvalFile | null }))
    .filter((e): e is { file: string; data: EvalFile } => e.data !== null && Array.isArray(e.data.attacks));
}

/** Per attack name, the newest result (of the best checkpoint when there is one). */
export function latestAttacks(runDir: string): AttackRow[] {
  const rows = runEvaluations(runDir).flatMap(({ file, data }) =>
    data.attacks!.map((a) => ({
      name: a.name,
      accuracy: a.accuracy,
      correct: a.correct,
      samples: a.samples,
      spec: a.spec,
      checkpoint: data.target?.checkpoint ?? 'file',
      time: data.provenance?.time ?? '',
      file,
    })),
  );
  const byName = new Map<string, AttackRow>();
  const rank = (r: AttackRow) => `${r.checkpoint === 'best' ? 1 : 0}${r.time}`;
  for (const r of rows) {
    const kept = byName.get(r.name);
    if (!kept || rank(r) > rank(kept)) byName.set(r.name, r);
  }
  return [...byName.values()];
}

const isPgd20 = (s: AttackSpec) => s.kind === 'pgd' && s.norm === 'linf' && s.steps === 20 && s.restarts === 1;
const isAa = (s: AttackSpec) => s.kind === 'autoAttack' && s.norm === 'linf' && s.version === 'standard';

function presetOf(runDir: string, config: RunConfig): string | null {
  const doc = readJson(path.join(runDir, 'config.json')) as { provenance?: { command?: string | null } } | null;
  const command = doc?.provenance?.command ?? null;
  const named = /--preset[ =]'?([A-Za-z0-9._-]+)/.exec(command ?? '');
  if (named) return named[1]!;
  // A seeds group or sweep records its preset (a resumed sweep's command names none).
  for (let up = path.dirname(runDir), i = 0; i < 3; i++, up = path.dirname(up)) {
    const grid = readJson(path.join(up, 'grid.json')) as { kind?: string; preset?: string | null } | null;
    if (grid?.kind === 'st-native-sweep') return grid.preset ?? DEFAULT_PRESET;
  }
  // A command line without --preset trained the default one.
  if (command !== null && /^st-native (train|sweep)\b/.test(command)) return DEFAULT_PRESET;
  const same = (p: RunConfig) => p.model === config.model && p.dataset.name === config.dataset.name && JSON.stringify(p.method) === JSON.stringify(config.method);
  return resolvedPresets().find((p) => same(p.config))?.name ?? null;
}

let presetConfigs: { name: string; config: RunConfig }[] | undefined;
/** Every preset resolved, once per process. */
function resolvedPresets(): { name: string; config: RunConfig }[] {
  presetConfigs ??= presets.flatMap((p) => {
    try {
      return [{ name: p.name, config: resolveConfig({ preset: p.name }) }];
    } catch {
      return []; // a preset that does not resolve on this machine
    }
  });
  return presetConfigs;
}

export function readRun(runDir: string, root = path.dirname(runDir)): RunRow | null {
  const doc = readJson(path.join(runDir, 'config.json')) as { config?: RunConfig } | null;
  const config = doc?.config;
  if (!config || typeof config !== 'object' || !config.method) return null;
  const summary = readJson(path.join(runDir, 'summary.json')) as (Partial<TrainSummary> & { status?: string }) | null;
  const report = summary?.test ?? summary?.best ?? null;
  const attacks = latestAttacks(runDir);
  const find = (pred: (s: AttackSpec) => boolean) => attacks.filter((a) => pred(a.spec)).sort((a, b) => (a.time < b.time ? 1 : -1))[0]?.accuracy ?? null;
  const status: RunRow['status'] =
    summary?.status === 'completed' ? 'completed' : summary?.status === 'cancelled' ? 'cancelled' : summary?.status === 'failed' ? 'failed' : 'running or killed';
  return {
    runDir,
    name: path.relative(root, runDir) || path.basename(runDir),
    status,
    preset: presetOf(runDir, config),
    method: config.method.name === 'awp' ? `${config.method.inner.name}-awp` : config.method.name,
    model: config.model,
    dataset: config.dataset.name,
    epochs: config.epochs,
    epochsCompleted: summary?.epochsCompleted ?? 0,
    clean: report?.cleanAcc ?? null,
    robust: report?.robustAcc ?? null,
    robustAttack: report?.attack ?? null,
    pgd20: find(isPgd20),
    aa: find(isAa),
    attacks,
    config,
  };
}

// ------------------------------------------------------------ sort and filter

/** The columns one can sort and filter by (besides any dotted config field). */
export const RUN_KEYS = ['name', 'status', 'preset', 'method', 'model', 'dataset', 'epochs', 'clean', 'robust', 'pgd20', 'aa'] as const;
type RunKey = (typeof RUN_KEYS)[number];
const NUMERIC: ReadonlySet<string> = new Set(['epochs', 'clean', 'robust', 'pgd20', 'aa']);
const ACCURACY: ReadonlySet<string> = new Set(['clean', 'robust', 'pgd20', 'aa']);

function flatten(value: unknown, prefix = '', out = new Map<string, unknown>()): Map<string, unknown> {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  } else out.set(prefix, value);
  return out;
}

/** A row's value for a column or a dotted config field (`method.beta`); undefined if it has none. */
function valueOf(row: RunRow, key: string): unknown {
  if ((RUN_KEYS as readonly string[]).includes(key)) return row[key as RunKey];
  return flatten(row.config).get(key.replace(/^config\./, ''));
}

function checkKey(key: string, rows: readonly RunRow[], what: string): void {
  if ((RUN_KEYS as readonly string[]).includes(key)) return;
  const fields = new Set(rows.flatMap((r) => [...flatten(r.config).keys()]));
  if (fields.has(key.replace(/^config\./, '')) || rows.length === 0) return;
  throw new ConfigError([{ path: what, message: `unknown key "${key}"${didYouMean(key, [...RUN_KEYS, ...fields])}; expected one of ${RUN_KEYS.join(', ')} or a config field such as method.beta` }]);
}

type Comparison = { key: string; op: '=' | '!=' | '<' | '<=' | '>' | '>=' | '~'; value: string };

/** `method=st,pgd20>0.5,method.beta>=4`: conditions joined by commas, all must hold. */
export function parseFilter(expr: string): Comparison[] {
  return expr
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((part) => {
      const m = /^([A-Za-z0-9_.]+)\s*(!=|<=|>=|=|<|>|~)\s*(.*)$/.exec(part);
      if (!m) throw new ConfigError([{ path: '--filter', message: `expected KEY OP VALUE with OP one of = != < <= > >= ~ (contains), got "${part}"` }]);
      return { key: m[1]!, op: m[2] as Comparison['op'], value: m[3]!.trim() };
    });
}

function holds(row: RunRow, c: Comparison): boolean {
  const v = valueOf(row, c.key);
  if (v === undefined || v === null) return c.op === '!=';
  if (c.op === '~') return String(v).includes(c.value);
  // Accuracies may be written as fractions (0.5) or percentages (50%).
  const wanted = c.value.endsWith('%') ? Number(c.value.slice(0, -1)) / 100 : Number(c.value);
  if (typeof v === 'number' && c.value !== '' && Number.isFinite(wanted)) {
    const x = ACCURACY.has(c.key) ? Math.round(v * 1e9) / 1e9 : v;
    switch (c.op) {
      case '=': return x === wanted;
      case '!=': return x !== wanted;
      case '<': return x < wanted;
      case '<=': return x <= wanted;
      case '>': return x > wanted;
      case '>=': return x >= wanted;
    }
  }
  const s = String(v);
  switch (c.op) {
    case '=': return s === c.value;
    case '!=': return s !== c.value;
    case '<': return s < c.value;
    case '<=': return s <= c.value;
    case '>': return s > c.value;
    default: return s >= c.value;
  }
}

export interface ListRunsOptions {
  /** The folder to search (default `runs`); run folders at any depth below it (up to 6), seeds groups and sweeps included. */
  dir?: string;
  /** `KEY` or `KEY:asc` / `KEY:desc` (accuracies default to descending, the rest ascending). */
  sort?: string;
  /** Conditions, comma-separated, all of which must hold: `method=st,pgd20>=50%,method.beta>2`. */
  filter?: string;
}

export function listRuns(options: ListRunsOptions = {}): RunRow[] {
  const root = path.resolve(options.dir ?? 'runs');
  if (!existsSync(root)) throw new ConfigError([{ path: options.dir ?? 'runs', message: 'no such folder' }]);
  let rows = findRunDirs(root).map((d) => readRun(d, root)).filter((r): r is RunRow => r !== null);
  if (options.filter) {
    const conditions = parseFilter(options.filter);
    for (const c of conditions) checkKey(c.key, rows, '--filter');
    rows = rows.filter((r) => conditions.every((c) => holds(r, c)));
  }
  if (options.sort) {
    const [key, dirText] = options.sort.split(':');
    if (dirText !== undefined && dirText !== 'asc' && dirText !== 'desc') throw new ConfigError([{ path: '--sort', message: `expected KEY, KEY:asc or KEY:desc, got "${options.sort}"` }]);
    checkKey(key!, rows, '--sort');
    const desc = dirText === undefined ? ACCURACY.has(key!) : dirText === 'desc';
    const cmp = (a: unknown, b: unknown) => {
      // Runs without the value go last whatever the direction.
      if (a === undefined || a === null) return b === undefined || b === null ? 0 : 1;
      if (b === undefined || b === null) return -1;
      const r = typeof a === 'number' && typeof b === 'number' ? a - b : String(a).localeCompare(String(b));
      return desc ? -r : r;
    };
    rows = [...rows].sort((a, b) => cmp(valueOf(a, key!), valueOf(b, key!)));
  }
  return rows;
}

export const isNumericKey = (k: string) => NUMERIC.has(k);

// ------------------------------------------------------------ compare

export interface RunComparison {
  runs: RunRow[];
  /** Config fields whose values differ between the runs (runName and runsDir left out), one value per run. */
  differences: { key: string; values: unknown[] }[];
  /** Attacks every run was evaluated with, one accuracy per run. */
  sharedAttacks: { name: string; accuracies: number[]; samples: number[] }[];
  /** Attacks only some runs have. */
  otherAttacks: string[];
  /**
   * When an argument is a seeds group or a sweep: one row per group (per
   * cell of a sweep; a lone run argument is a group of one) with its
   * metrics over its seeds, and the config fields where the groups differ.
   */
  groups?: GroupRow[];
  groupDifferences?: { key: string; values: unknown[] }[];
}

/**
 * Runs side by side. Each argument is a run folder, or a folder of runs (a
 * seeds group, a sweep), which stands for all the runs in it.
 */
export function compareRuns(dirs: readonly string[]): RunComparison {
  if (dirs.length === 0) throw new ConfigError([{ path: 'runs', message: 'expected at least one run folder' }]);
  const runs = dirs.flatMap((d) => {
    const root = path.resolve(d);
    if (!existsSync(root)) throw new ConfigError([{ path: d, message: 'no such folder' }]);
    const found = findRunDirs(root).map((r) => readRun(r, path.dirname(root))).filter((r): r is RunRow => r !== null);
    if (found.length === 0) throw new ConfigError([{ path: d, message: 'holds no run folder (no config.json in it or below it)' }]);
    return found;
  });
  const flats = runs.map((r) => flatten({ ...r.config, runName: null, runsDir: null }));
  const keys = [...new Set(flats.flatMap((f) => [...f.keys()]))].sort();
  const differences = keys
    .map((key) => ({ key, values: flats.map((f) => f.get(key)) }))
    .filter((d) => new Set(d.values.map((v) => JSON.stringify(v))).size > 1);
  const names = [...new Set(runs.flatMap((r) => r.attacks.map((a) => a.name)))];
  const shared = names.filter((n) => runs.every((r) => r.attacks.some((a) => a.name === n)));
  return {
    runs,
    differences,
    sharedAttacks: shared.map((name) => {
      const rows = runs.map((r) => r.attacks.find((a) => a.name === name)!);
      return { name, accuracies: rows.map((a) => a.accuracy), samples: rows.map((a) => a.samples) };
    }),
    otherAttacks: names.filter((n) => !shared.includes(n)),
    ...(() => {
      const g = compareGroups(dirs, runs);
      return g ? { groups: g.groups, groupDifferences: g.differences } : {};
    })(),
  };
}

// ------------------------------------------------------------ groups (seeds, sweep cells)

/** A seeds group, a sweep's cell, or a lone run as `runs compare` shows them beside groups: its metrics over its seeds. */
export interface GroupRow {
  /** `<group>`, `<sweep>/<cell>` or the run's name. */
  name: string;
  kind: 'seeds' | 'cell' | 'run';
  dir: string;
  status: string;
  /** The seeds summarised. */
  n: number;
  /** Each metric as mean ± 95% CI (Student t, n−1) over the seeds, as the group's results.json has it. */
  metrics: MetricRow[];
}

interface ResultsFile {
  kind?: string;
  status?: string;
  metrics?: MetricRow[];
  cells?: { id: string; dir: string; status: string; metrics: MetricRow[] }[];
}

/** The groups a folder's results.json describes (a sweep: one per cell), or null for any other folder. */
function readGroups(root: string): GroupRow[] | null {
  let r: ResultsFile;
  try {
    r = JSON.parse(readFileSync(path.join(root, 'results.json'), 'utf8')) as ResultsFile;
  } catch {
    return null;
  }
  const name = path.basename(root);
  if (r.kind === 'st-native-sweep-results' && Array.isArray(r.cells)) {
    return r.cells.map((c) => ({ name: `${name}/${c.id}`, kind: 'cell', dir: path.join(root, c.dir), status: c.status, n: c.metrics[0]?.n ?? 0, metrics: c.metrics }));
  }
  if (r.kind === 'st-native-seeds-results' && Array.isArray(r.metrics)) {
    return [{ name, kind: 'seeds', dir: root, status: r.status ?? 'unknown', n: r.metrics[0]?.n ?? 0, metrics: r.metrics }];
  }
  return null;
}

/** A lone run beside groups: its own numbers, n = 1. */
function runGroup(run: RunRow): GroupRow {
  const metric = (key: string, label: string, v: number | null): MetricRow[] =>
    v === null ? [] : [{ key, label, kind: 'accuracy', description: `${label} of the run's best checkpoint`, values: [v], ...summarize([v]) }];
  const metrics = [...metric('clean', 'clean', run.clean), ...metric('robust', run.robustAttack ?? 'robust', run.robust)];
  return { name: run.name, kind: 'run', dir: run.runDir, status: run.status, n: metrics.length > 0 ? 1 : 0, metrics };
}

/** The groups of `dirs` when any of them is a seeds group or a sweep (else null): each summarised from its results.json. */
export function compareGroups(dirs: readonly string[], runs: readonly RunRow[]): { groups: GroupRow[]; differences: { key: string; values: unknown[] }[] } | null {
  const found = dirs.map((d) => readGroups(path.resolve(d)));
  if (found.every((g) => g === null)) return null;
  const groups = dirs.flatMap((d, i) => {
    const root = path.resolve(d);
    return found[i] ?? runs.filter((r) => r.runDir === root || r.runDir.startsWith(root + path.sep)).map(runGroup);
  });
  // A group's config: that of its first run, seed left out (it is what varies inside a group).
  const configs = groups.map((g) => {
    const run = runs.find((r) => r.runDir === g.dir || r.runDir.startsWith(g.dir + path.sep));
    return flatten(run ? { ...run.config, seed: null, runName: null, runsDir: null } : {});
  });
  const keys = [...new Set(configs.flatMap((f) => [...f.keys()]))].sort();
  const differences = keys.map((key) => ({ key, values: configs.map((f) => f.get(key)) })).filter((d) => new Set(d.values.map((v) => JSON.stringify(v))).size > 1);
  return { groups, differences };
}
