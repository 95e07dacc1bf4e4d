/**
 * `train --seeds` and `sweep`: many runs in a row, with progress lines on
 * stderr and the result table on stdout (or its JSON with --json). Ctrl-C
 * (SIGTERM, SIGHUP, a closed stdout) stops the run in progress within a
 * step as `train` does; finished runs stay finished, and the same command
 * again continues where it stopped.
 */
import path from 'node:path';
import { ConfigError } from '../config/errors.js';
import type { ConfigOverrides } from '../config/presets.js';
import { seedList, seedsOptionSchema, seedsText, trainSeeds, type SeedsEvent, type SeedsResult } from '../experiment/seeds.js';
import { sweep, sweepText, type SweepEvent, type SweepResult } from '../experiment/sweep.js';
import type { TrainEvent } from '../native-types.js';
import type { ChildRun } from '../experiment/pool.js';
import type { AutoReport } from '../report/auto.js';
import { count, pct } from '../tui/format.js';
import { EXIT } from './errors.js';
import { overridesFrom, type TrainArgs } from './train.js';
import type { Io } from './context.js';

const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
type StopSignal = (typeof STOP_SIGNALS)[number];
const exitCodeFor = (why: StopSignal | 'pipe'): number =>
  why === 'pipe' ? EXIT.pipeClosed : why === 'SIGINT' ? EXIT.interrupted : why === 'SIGTERM' ? EXIT.terminated : EXIT.hangup;

/** Ctrl-C and friends abort `signal`; a second one quits at once. */
function stopControl(io: Io): { signal: AbortSignal; exitCode: () => number; dispose: () => void } {
  const controller = new AbortController();
  let why: StopSignal | 'pipe' | null = null;
  let signals = 0;
  const onSignal = (s: StopSignal) => {
    signals += 1;
    if (signals > 1) {
      io.err(`${s} again: quitting now; finished runs are kept and the same command continues`);
      process.exit(exitCodeFor(s));
    }
    why = s;
    io.err(`${s === 'SIGINT' ? 'Ctrl-C' : s}: stopping the run in progress after this step (Ctrl-C again to quit at once); the same command continues later`);
    controller.abort();
  };
  const onClosed = () => {
    why ??= 'pipe';
    controller.abort();
  };
  for (const s of STOP_SIGNALS) process.on(s, onSignal);
  io.outputClosed?.addEventListener('abort', onClosed, { once: true });
  return {
    signal: controller.signal,
    exitCode: () => exitCodeFor(why ?? 'SIGINT'),
    dispose: () => {
      // Once stopping, a second signal must still mean "quit now".
      if (why === null) for (const s of STOP_SIGNALS) process.off(s, onSignal);
      io.outputClosed?.removeEventListener('abort', onClosed);
    },
  };
}

/** `5` or `0,1,2,3,4`: the seeds to train. */
export function parseSeedsArgument(text: string): number[] {
  const raw = text.includes(',') ? text.split(',').map((s) => s.trim()) : [text.trim()];
  const numbers = raw.map(Number);
  if (raw.some((s) => s === '' || !/^-?\d+$/.test(s))) {
    throw new ConfigError([{ path: '--seeds', message: `expected a count (5) or a comma-separated list of integer seeds (0,1,2), got "${text}"` }]);
  }
  const parsed = seedsOptionSchema.safeParse(text.includes(',') ? numbers : numbers[0]);
  if (!parsed.success) {
    throw new ConfigError([{ path: '--seeds', message: `${parsed.error.issues[0]?.message ?? 'invalid'} (got "${text}"; a count is 1 to 1000)` }]);
  }
  return seedList(parsed.data);
}

function trainLine(prefix: string, e: TrainEvent): string | null {
  if (e.type === 'eval') return `${prefix}epoch ${e.epoch}: clean ${pct(e.cleanAcc).trim()}, ${e.attack} ${pct(e.robustAcc).trim()}`;
  return null;
}

function seedsLine(prefix: string, e: SeedsEvent): string | null {
  switch (e.type) {
    case 'seed-start':
      return `${prefix}seed ${e.seed} (${e.index + 1}/${e.total}): ${e.runDir}${e.resumed ? ' (interrupted: continuing from its last completed epoch)' : ''}`;
    case 'seed-failed':
      return `${prefix}seed ${e.seed} failed: ${e.error.split('\n')[0]}`;
    case 'seed-skipped':
      return `${prefix}seed ${e.seed} (${e.index + 1}/${e.total}): already complete, kept`;
    case 'seed-done':
      return `${prefix}seed ${e.seed} done in ${Math.round(e.summary.seconds)} s`;
    case 'train':
      return trainLine(`${prefix}seed ${e.seed} `, e.event);
  }
}

function sweepLine(e: SweepEvent): string | null {
  switch (e.type) {
    case 'cell-start':
      return `cell ${e.index + 1}/${e.total} ${e.cell}`;
    case 'cell-skipped':
      return `cell ${e.index + 1}/${e.total} ${e.cell}: already complete, kept`;
    case 'cell-done':
      return null;
    case 'cell-failed':
      return `cell ${e.index + 1}/${e.total} ${e.cell} failed (the other cells go on)`;
    case 'seeds':
      return seedsLine(`  `, e.event);
  }
}

function filesLine(files: Record<string, string>): string {
  return `results: ${Object.values(files).map((f) => path.relative(process.cwd(), f) || f).join(', ')}`;
}

export interface SeedsArgs extends TrainArgs {
  seeds: string;
  parallel?: string;
  /** False with --no-report. */
  report?: boolean;
}

/** `--parallel N`: runs trained at once, each in its own process. */
export function parseParallelArgument(text: string | undefined): { parallel?: number } {
  if (text === undefined) return {};
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isInteger(n) || n < 1 || n > 64) {
    throw new ConfigError([{ path: '--parallel', message: `expected an integer from 1 to 64 (runs trained at once), got "${text}"` }]);
  }
  return { parallel: n };
}

/** The report's line: where it is, or why it is not there (never a failure). */
function reportLine(io: Io, report: AutoReport | undefined): void {
  if (report?.file) io.out(`report: ${path.relative(process.cwd(), report.file) || report.file}`);
  else if (report?.note) io.err(`note: ${report.note}`);
}

export async function seedsCommand(args: SeedsArgs, io: Io): Promise<number> {
  if (args.resume !== undefined) throw new ConfigError([{ path: '--seeds', message: 'cannot be combined with --resume: run the same --seeds command again (with the same --name) to continue a group' }]);
  const seeds = parseSeedsArgument(args.seeds);
  const stop = stopControl(io);
  let result: SeedsResult;
  let named = false;
  try {
    result = await trainSeeds({
      preset: args.preset,
      // --name names the group folder, not each run.
      // Checked by resolveConfig inside, naming the field.
      overrides: overridesFrom({ ...args, name: undefined }) as ConfigOverrides[],
      seeds,
      ...(args.name !== undefined ? { name: args.name } : {}),
      ...parseParallelArgument(args.parallel),
      ...(args.report === false ? { report: false } : {}),
      signal: stop.signal,
      onEvent: (e) => {
        if (args.json) return;
        if (!named && e.type !== 'train') io.err(`seeds group: ${path.dirname(e.runDir)}`);
        if (e.type !== 'train') named = true;
        const line = seedsLine('', e);
        if (line) io.err(line);
      },
    });
  } finally {
    stop.dispose();
  }
  if (args.json) {
    io.out(JSON.stringify({ dir: result.dir, status: result.status, seeds: result.seeds, metrics: result.metrics, runs: result.runs.map((r) => ({ seed: r.seed, runDir: r.runDir, reused: r.reused })), failures: result.failures, report: result.report?.file ?? null }));
  } else {
    io.out(`${count(result.runs.length, 'seed')} of ${result.seeds.length}, mean ± 95% CI (Student t, n−1):`);
    io.out(seedsText(result));
    io.out(filesLine(result.files));
    reportLine(io, result.report);
    if (result.status === 'cancelled') io.out(`stopped: run the same command${args.name === undefined ? ` with --name ${path.basename(result.dir)}` : ''} to continue`);
  }
  for (const f of result.failures) io.err(`seed ${f.seed} failed: ${f.error}`);
  if (result.status === 'failed') io.err(`${count(result.failures.length, 'seed')} failed; the same command${args.name === undefined ? ` with --name ${path.basename(result.dir)}` : ''} trains ${result.failures.length === 1 ? 'it' : 'them'} again`);
  return result.status === 'completed' ? EXIT.ok : result.status === 'failed' ? EXIT.failed : stop.exitCode();
}

export interface SweepArgs {
  preset?: string;
  config?: string;
  set: string[];
  seeds?: string;
  epochs?: string;
  device?: string;
  runsDir?: string;
  dataDir?: string;
  name?: string;
  resume?: string;
  parallel?: string;
  /** False with --no-report. */
  report?: boolean;
  json: boolean;
}

export async function sweepCommand(args: SweepArgs, io: Io): Promise<number> {
  // Every --set with a comma list is an axis; the rest are fixed overrides.
  const stop = stopControl(io);
  let result: SweepResult;
  // The folder is said once, with the first cell (started or kept).
  let named = false;
  try {
    const trainArgs: TrainArgs = { preset: args.preset, config: args.config, set: [], epochs: args.epochs, device: args.device, runsDir: args.runsDir, json: args.json };
    if (args.dataDir !== undefined) trainArgs.set.push(`dataset.dataDir=${JSON.stringify(args.dataDir)}`);
    const given = { '--set': args.set.length > 0, '--preset': args.preset, '--config': args.config, '--seeds': args.seeds, '--epochs': args.epochs, '--device': args.device, '--data-dir': args.dataDir, '--name': args.name };
    const grid = Object.entries(given).filter(([, v]) => Boolean(v)).map(([k]) => k);
    if (args.resume !== undefined && grid.length > 0) {
      throw new ConfigError(grid.map((k) => ({ path: k, message: "a resumed sweep runs its own grid.json; leave it out (or start a new sweep)" })));
    }
    const options = args.resume !== undefined
      ? { dir: args.resume, resume: true }
      : {
          preset: args.preset,
          overrides: overridesFrom(trainArgs) as ConfigOverrides[],
          set: args.set,
          ...(args.seeds !== undefined ? { seeds: parseSeedsArgument(args.seeds) } : {}),
          ...(args.name !== undefined ? { name: args.name } : {}),
        };
    const testKill = process.env.ST_NATIVE_TEST_KILL_CELL;
    result = await sweep({
      ...options,
      ...parseParallelArgument(args.parallel),
      // Test-only (test/parallel.test.ts): SIGKILL the training processes of
      // that cell as they start, to check how the CLI reports a dying child.
      ...(testKill ? { onChildPid: (pid: number, run: ChildRun) => void (run.cell === testKill && process.kill(pid, 'SIGKILL')) } : {}),
      ...(args.report === false ? { report: false } : {}),
      signal: stop.signal,
      onEvent: (e) => {
        if (args.json) return;
        if (!named && e.type !== 'seeds') io.err(`sweep: ${e.sweepDir}`);
        if (e.type !== 'seeds') named = true;
        const line = sweepLine(e);
        if (line) io.err(line);
      },
    });
  } finally {
    stop.dispose();
  }
  if (args.json) {
    io.out(JSON.stringify({ dir: result.dir, status: result.status, axes: result.axes, failed: result.failed, report: result.report?.file ?? null, cells: result.cells.map((c) => ({ id: c.id, values: c.values, status: c.status, ...(c.error !== undefined ? { error: c.error } : {}), metrics: c.metrics })) }));
  } else {
    io.out(sweepText(result));
    io.out(filesLine(result.files));
    reportLine(io, result.report);
    if (result.status === 'cancelled') io.out(`stopped: st-native sweep --resume ${path.relative(process.cwd(), result.dir) || result.dir} continues it`);
  }
  // Said at the end, after the table, so that it is not lost among the progress lines.
  for (const c of result.cells) if (c.error !== undefined) io.err(`cell ${c.id} failed: ${c.error}`);
  if (result.status === 'failed') io.err(`${count(result.failed.length, 'cell')} of ${result.cells.length} failed; st-native sweep --resume ${path.relative(process.cwd(), result.dir) || result.dir} trains what is missing`);
  return result.status === 'completed' ? EXIT.ok : result.status === 'failed' ? EXIT.failed : stop.exitCode();
}
