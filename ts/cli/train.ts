/** `st-native train`: resolve the config, run it, show progress, print the result. */
import { readFileSync } from 'node:fs';
import React from 'react';
import { render } from 'ink';
import { ConfigError } from '../config/errors.js';
import { parseSetArgument, resolveConfig } from '../config/resolve.js';
import { runExperiment, type RunResult } from '../experiment/run.js';
import type { TrainEvent, TrainSummary } from '../native-types.js';
import { App } from '../tui/App.js';
import { pct } from '../tui/format.js';
import { TrainStore } from '../tui/store.js';
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
  json: boolean;
}

function readConfigFile(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new ConfigError([{ path: `--config ${file}`, message: `cannot read a JSON object (${(e as Error).message})` }]);
  }
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
      ? `cancelled after ${summary.epochsCompleted} complete epoch(s); weights saved to ${summary.lastCheckpoint ?? '-'}`
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

export async function trainCommand(args: TrainArgs, io: { out: (s: string) => void; err: (s: string) => void; tty: boolean }): Promise<number> {
  const config = resolveConfig({ preset: args.preset, overrides: overridesFrom(args) });
  const controller = new AbortController();
  let interrupts = 0;
  // Where "stopping…" is said: on stderr, except under the dashboard, which owns the terminal.
  let sayStopping = () => io.err('stopping after this step and saving a checkpoint… (Ctrl-C again to quit at once)');
  const onSigint = () => {
    interrupts += 1;
    if (interrupts > 1) process.exit(EXIT.interrupted);
    sayStopping();
    controller.abort();
  };
  process.on('SIGINT', onSigint);

  let onEvent: (e: TrainEvent) => void;
  let finish = () => {};
  if (args.json) {
    onEvent = (e) => io.out(JSON.stringify(e));
  } else if (io.tty) {
    const store = new TrainStore();
    const ink = render(React.createElement(App, { store }), { exitOnCtrlC: false, patchConsole: false });
    onEvent = (e) => store.push(e);
    sayStopping = () => store.markStopping();
    finish = () => {
      ink.unmount();
      store.dispose();
    };
  } else {
    const printer = new PlainPrinter(io.out);
    onEvent = (e) => printer.push(e);
  }
  let result: RunResult;
  try {
    result = await runExperiment(config, { onEvent, signal: controller.signal });
  } finally {
    // The dashboard goes (once, on success or failure) before anything else is printed.
    finish();
    process.off('SIGINT', onSigint);
  }
  if (!args.json) io.out(summaryText(result.summary, result.runDir));
  return result.summary.status === 'cancelled' ? EXIT.interrupted : EXIT.ok;
}
