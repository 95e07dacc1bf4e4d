/** `st-native train`: resolve the config, run it, show progress, print the result. */
import path from 'node:path';
import { ConfigError, describeValue } from '../config/errors.js';
import { readJsonFile } from '../config/read-json.js';
import { parseSetArgument, resolveConfig } from '../config/resolve.js';
import { completedRun, planResume } from '../experiment/resume.js';
import { autoReport } from '../report/auto.js';
import { launchRank } from '../experiment/launch.js';
import { runExperiment, type RunResult } from '../experiment/run.js';
import type { TrainEvent, TrainSummary } from '../native-types.js';
import { count, pct } from '../tui/format.js';
import { TrainStore } from '../tui/store.js';
import { showTrainDashboard } from './dashboard.js';
import { EXIT } from './errors.js';
import { PlainPrinter } from './plain.js';

export interface TrainArgs {
  preset?: string;
  config?: string;
  set: string[];
  epochs?: string;
  device?: string;
  runsDir?: string;
  name?: string;
  /** A run folder to continue (see ts/experiment/resume.ts). */
  resume?: string;
  /** False with --no-report: no report.html at the end. */
  report?: boolean;
  json: boolean;
}

/** A bounded read of a regular file (never a FIFO or /dev/zero) holding one JSON object. */
function readConfigFile(file: string): unknown {
  const label = `--config ${file}`;
  const data = readJsonFile(file, label);
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw new ConfigError([{ path: label, message: `expected a JSON object, got ${describeValue(data)}` }]);
  }
  return data;
}

export function overridesFrom(args: TrainArgs): unknown[] {
  const out: unknown[] = [];
  if (args.config) out.push(readConfigFile(args.config));
  for (const s of args.set) out.push(parseSetArgument(s));
  if (args.epochs !== undefined) out.push(parseSetArgument(`epochs=${args.epochs}`));
  if (args.device !== undefined) out.push({ device: args.device });
  if (args.runsDir !== undefined) out.push({ runsDir: args.runsDir });
  if (args.name !== undefined) out.push({ runName: args.name });
  return out;
}


function summaryText(summary: TrainSummary, runDir: string): string {
  const best = summary.best;
  const last = summary.last;
  const lines = [
    summary.status === 'cancelled'
      ? `cancelled after ${count(summary.epochsCompleted, 'complete epoch')}; weights saved to ${summary.lastCheckpoint ?? '-'}`
      : `done in ${Math.round(summary.seconds)} s`,
  ];
  const on = (r: { split: string; samples: number }) => `on ${r.samples} ${r.split === 'test' ? 'held-out test' : 'validation'} images`;
  if (last) lines.push(`last epoch (${last.epoch}): clean ${pct(last.cleanAcc).trim()}, ${last.attack} ${pct(last.robustAcc).trim()} ${on(last)}`);
  if (best) lines.push(`best epoch (${best.epoch}, by ${best.attack} ${on(best)}): clean ${pct(best.cleanAcc).trim()}, ${best.attack} ${pct(best.robustAcc).trim()}`);
  const test = summary.test;
  if (test && summary.selectedOn === 'validation') {
    lines.push(`best checkpoint on the test split: clean ${pct(test.cleanAcc).trim()}, ${test.attack} ${pct(test.robustAcc).trim()} ${on(test)}`);
  }
  lines.push(`run folder: ${runDir}`);
  return lines.join('\n');
}

export interface TrainIo {
  out: (s: string) => void;
  err: (s: string) => void;
  tty: boolean;
  /** Aborts when stdout is closed by its reader (`st-native train | head`). */
  outputClosed?: AbortSignal;
}

/** Signals that stop a run gracefully, as the first Ctrl-C does. */
const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
type StopSignal = (typeof STOP_SIGNALS)[number];

const exitCodeFor = (why: StopSignal | 'pipe'): number =>
  why === 'pipe' ? EXIT.pipeClosed : why === 'SIGINT' ? EXIT.interrupted : why === 'SIGTERM' ? EXIT.terminated : EXIT.hangup;

export async function trainCommand(args: TrainArgs, io: TrainIo): Promise<number> {
  // --resume: the run's own config, with what the options may change.
  const plan = args.resume
    ? planResume(args.resume, [...(args.preset ? [resolveConfig({ preset: args.preset })] : []), ...overridesFrom(args)])
    : undefined;
  const config = plan?.config ?? resolveConfig({ preset: args.preset, overrides: overridesFrom(args) });
  const done = plan ? completedRun(plan.runDir, config.epochs) : null;
  if (plan && done) {
    io.err(`${plan.runDir} is already complete: ${count(done.epochsCompleted, 'epoch')} of ${config.epochs} trained; nothing to resume (--epochs N with more epochs continues it)`);
    return EXIT.ok;
  }
  const controller = new AbortController();
  // Why the run was asked to stop: a signal's reason wins over a closed
  // pipe's (it sets the exit code); signals are counted on their own, so a
  // Ctrl-C after the pipe closed is still a first one.
  let stoppedBy: StopSignal | 'pipe' | null = null;
  let signals = 0;
  // Where "stopping…" is said: on stderr, except under the dashboard, which owns the terminal.
  let sayStopping = (why: string) => io.err(`${why}: stopping after this step and saving a checkpoint… (Ctrl-C again to quit at once)`);
  const onSignal = (signal: StopSignal) => {
    signals += 1;
    if (signals > 1) {
      // A second signal means "now": no final checkpoint, but nothing
      // half-written either (checkpoints are renamed into place whole, and
      // the native exit hook removes a write in flight).
      finish();
      io.err(`${signal} again: quitting now without a final checkpoint; checkpoints of completed epochs are kept`);
      process.exit(exitCodeFor(signal));
    }
    stoppedBy = signal;
    sayStopping(signal === 'SIGINT' ? 'Ctrl-C' : signal);
    controller.abort();
  };
  for (const s of STOP_SIGNALS) process.on(s, onSignal);
  // A closed stdout ends a pipeline normally: stop like Ctrl-C, quietly
  // (checkpoint and summary are written), exit 141 as a SIGPIPE'd tool would.
  const onOutputClosed = () => {
    stoppedBy ??= 'pipe';
    controller.abort();
  };
  io.outputClosed?.addEventListener('abort', onOutputClosed, { once: true });

  let onEvent: (e: TrainEvent) => void;
  let finish = () => {};
  // Data-parallel ranks other than 0 print plain lines, prefixed, on stderr
  // (rank 0 alone shows the dashboard or the --json events on stdout).
  const launch = launchRank();
  const follower = launch !== null && launch.rank !== 0;
  if (follower) {
    const printer = new PlainPrinter((line) => io.err(`[rank ${launch.rank}/${launch.worldSize}] ${line}`));
    onEvent = (e) => printer.push(e);
  } else if (args.json) {
    onEvent = (e) => io.out(JSON.stringify(e));
  } else if (io.tty) {
    const store = new TrainStore();
    const ink = await showTrainDashboard(store);
    onEvent = (e) => store.push(e);
    sayStopping = () => store.markStopping();
    let finished = false;
    finish = () => {
      if (finished) return;
      finished = true;
      ink.unmount();
      store.dispose();
    };
  } else {
    const printer = new PlainPrinter(io.out);
    onEvent = (e) => printer.push(e);
  }
  let result: RunResult;
  try {
    // Said at the start on stderr (plain and --json; the dashboard shows its own).
    const onRunDir = (dir: string) => {
      if (follower) return;
      if (io.tty && !args.json) return;
      const taken = config.runName !== null && !plan && path.basename(dir) !== config.runName;
      io.err(`run folder: ${dir}${taken ? ` ("${config.runName}" was taken)` : ''}`);
    };
    result = await runExperiment(config, { onEvent, signal: controller.signal, resume: plan, onRunDir });
  } finally {
    // The dashboard goes (once, on success or failure) before anything else is printed.
    finish();
    // Once stopping, a second signal must still mean "quit now" (and not
    // Node's default, death by signal) until the process is gone.
    if (stoppedBy === null) for (const s of STOP_SIGNALS) process.off(s, onSignal);
    io.outputClosed?.removeEventListener('abort', onOutputClosed);
  }
  if (follower) {
    io.err(`[rank ${launch.rank}/${launch.worldSize}] ${result.summary.status} after ${count(result.summary.epochsCompleted, 'epoch')}; rank 0 wrote the run folder`);
    return result.summary.status !== 'cancelled' ? EXIT.ok : exitCodeFor(stoppedBy ?? 'SIGINT');
  }
  if (!args.json) io.out(summaryText(result.summary, result.runDir));
  // The run folder's report.html, refreshed at the end; on stderr so that --json keeps stdout to events.
  if (args.report !== false) {
    const report = await autoReport(result.runDir);
    io.err(report.file ? `report: ${report.file}` : `note: ${report.note}`);
  }
  if (result.summary.status !== 'cancelled') return EXIT.ok;
  return exitCodeFor(stoppedBy ?? 'SIGINT');
}
