/**
 * A run's training history from its metrics.jsonl: the per-epoch losses and
 * train accuracy, the per-epoch evaluations, and the learning rate per step.
 * Only the event kinds and fields the plots use are checked, so a log of a
 * later version with more fields still reads; a line that is not JSON, or an
 * epoch/eval/step event without its numbers, is an error naming the file,
 * the line and the field.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';

export interface EpochRow {
  epoch: number;
  loss: number;
  /** Which parts exist depends on the method (ST has all four). */
  parts: { ceAdv?: number; ceBenign?: number; ceCol?: number; reg?: number };
  trainAcc: number;
}

export interface EvalRow {
  epoch: number;
  cleanAcc: number;
  robustAcc: number;
  attack: string;
  samples: number;
  split: string;
}

/** The learning rate at a step, `x` in epochs (epoch 3, step 5 of 10 is 2.5). */
export interface LrRow {
  x: number;
  lr: number;
}

export interface RunHistory {
  file: string;
  epochs: EpochRow[];
  evals: EvalRow[];
  lr: LrRow[];
  /** Things a reader of the report should know (an unterminated last line). */
  notices: string[];
}

/** A report's input was missing or unreadable: the message names the file. */
export class ReportInputError extends Error {
  readonly code = 'ERR_REPORT_INPUT';
  override name = 'ReportInputError';
}

const finite = z.number().finite();
const epochEvent = z.looseObject({
  type: z.literal('epoch'),
  epoch: z.number().int().min(1),
  loss: finite,
  parts: z.looseObject({ ceAdv: finite.optional(), ceBenign: finite.optional(), ceCol: finite.optional(), reg: finite.optional() }),
  trainAcc: finite,
});
const evalEvent = z.looseObject({
  type: z.literal('eval'),
  epoch: z.number().int().min(0),
  cleanAcc: finite,
  robustAcc: finite,
  attack: z.string(),
  samples: z.number().int().min(0),
  split: z.string(),
});
const stepEvent = z.looseObject({
  type: z.literal('step'),
  epoch: z.number().int().min(1),
  step: z.number().int().min(1),
  stepsPerEpoch: z.number().int().min(1),
  lr: finite,
});

/** At most this many learning-rate points are plotted (a long run logs a step event per step). */
const MAX_LR_POINTS = 400;

function parseLine<T>(schema: z.ZodType<T>, value: unknown, where: string): T {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const field = issue.path.join('.') || '(event)';
  throw new ReportInputError(`${where}: ${field}: ${issue.message}`);
}

/** `max` points evenly spread over the rows, first and last included: the curve keeps its shape and its ends. */
function thin<T>(rows: T[], max: number): T[] {
  if (rows.length <= max) return rows;
  return Array.from({ length: max }, (_, i) => rows[Math.round((i * (rows.length - 1)) / (max - 1))]!);
}

export function readHistory(runDir: string): RunHistory {
  const file = path.join(runDir, 'metrics.jsonl');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ReportInputError(`${file}: cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): is this a run folder?`);
  }
  const notices: string[] = [];
  const lines = text.split('\n');
  // A run killed mid-write leaves its last line unterminated: that line is
  // the only one that may be cut short, and it is left out with a notice.
  const last = lines.pop() ?? '';
  if (last.trim() !== '') {
    try {
      JSON.parse(last);
      lines.push(last);
    } catch {
      notices.push(`${file}: the last line (${lines.length + 1}) is cut short (the run was killed while writing it) and was left out`);
    }
  }
  // Keyed by epoch, last one wins: a resumed run may log an epoch again.
  const epochs = new Map<number, EpochRow>();
  const evals = new Map<number, EvalRow>();
  const lr: LrRow[] = [];
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    const where = `${file}: line ${i + 1}`;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (e) {
      throw new ReportInputError(`${where}: not JSON (${(e as Error).message}); expected one training event per line`);
    }
    if (value === null || typeof value !== 'object' || typeof (value as { type?: unknown }).type !== 'string') {
      throw new ReportInputError(`${where}: expected a training event (a JSON object with a "type")`);
    }
    switch ((value as { type: string }).type) {
      case 'epoch': {
        const e = parseLine(epochEvent, value, where);
        epochs.set(e.epoch, { epoch: e.epoch, loss: e.loss, parts: e.parts, trainAcc: e.trainAcc });
        break;
      }
      case 'eval': {
        const e = parseLine(evalEvent, value, where);
        // The curves follow the trained weights; a run with `ema` also logs the average's results.
        if ((value as { ema?: unknown }).ema === true) break;
        evals.set(e.epoch, { epoch: e.epoch, cleanAcc: e.cleanAcc, robustAcc: e.robustAcc, attack: e.attack, samples: e.samples, split: e.split });
        break;
      }
      case 'step': {
        const s = parseLine(stepEvent, value, where);
        lr.push({ x: s.epoch - 1 + s.step / s.stepsPerEpoch, lr: s.lr });
        break;
      }
      default:
        break;
    }
  });
  if (epochs.size === 0 && evals.size === 0) {
    throw new ReportInputError(`${file}: no epoch recorded (${lines.some((l) => l.trim() !== '') ? 'no epoch or eval events' : 'the file is empty'}): the run did not finish an epoch`);
  }
  const byEpoch = <T extends { epoch: number }>(m: Map<number, T>) => [...m.values()].sort((a, b) => a.epoch - b.epoch);
  return { file, epochs: byEpoch(epochs), evals: byEpoch(evals), lr: thin(lr.sort((a, b) => a.x - b.x), MAX_LR_POINTS), notices };
}
