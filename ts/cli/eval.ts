/**
 * `st-native eval`: the attack table of a run's checkpoint or of any
 * checkpoint file (PyTorch state dicts of registered models included), with
 * the per-point worst case; plain progress lines without a TTY, a live view
 * on one, or one JSON object with --json.
 */
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { parseSetArgument } from '../config/resolve.js';
import {
  evaluateAttacks,
  PAPER_ATTACKS,
  RUN_ATTACKS,
  type AttackEvaluateOptions,
  type Evaluation,
  wilson,
} from '../experiment/evaluate.js';
import type { AttackName } from '../names.js';
import type { EvalEvent, ModelName, NativeEvalConfig, Normalization } from '../native-types.js';
import { duration, intervalOf, pct, pctOf } from '../tui/format.js';
import { showEvalDashboard } from './dashboard.js';
import { EvalStore } from './eval-state.js';
import { PlainEvalPrinter } from './eval-progress.js';
import { EXIT, UsageError } from './errors.js';
import { RUN_CHECKPOINTS, type RunCheckpoint } from '../experiment/run-checkpoints.js';
import { NotARunFolderError } from '../experiment/run-dir.js';
import { OptionsError } from '../options-error.js';
import { autoReport } from '../report/auto.js';

export interface EvalIo {
  out: (s: string) => void;
  err: (s: string) => void;
  tty: boolean;
  outputClosed?: AbortSignal;
}

export type EvalValues = Record<string, string | boolean | (string | boolean)[] | undefined>;

/** The options `eval` takes (node:util parseArgs form). */
export const evalOptions = {
  checkpoint: { type: 'string' },
  attacks: { type: 'string' },
  n: { type: 'string' },
  batch: { type: 'string' },
  eps: { type: 'string' },
  step: { type: 'string' },
  'eps-l2': { type: 'string' },
  seed: { type: 'string' },
  model: { type: 'string' },
  classes: { type: 'string' },
  dataset: { type: 'string' },
  'data-dir': { type: 'string' },
  normalize: { type: 'string' },
  'final-iterate': { type: 'boolean' },
  'save-adversarial': { type: 'string' },
  'no-write': { type: 'boolean' },
  'no-resume': { type: 'boolean' },
  set: { type: 'string', multiple: true },
  device: { type: 'string' },
  json: { type: 'boolean' },
} as const;

/** A number as users write radii: 0.031, 8/255, 2e-3. */
export function parseNumber(option: string, text: string): number {
  const m = /^\s*([^/]+?)\s*(?:\/\s*([^/]+?)\s*)?$/.exec(text);
  const value = m ? (m[2] === undefined ? Number(m[1]) : Number(m[1]) / Number(m[2])) : NaN;
  if (!Number.isFinite(value)) throw new UsageError(`--${option}: expected a number (e.g. 0.031 or 8/255), got "${text}"`);
  return value;
}

function parseInteger(option: string, text: string, min: number, max: number): number {
  const value = Number(text);
  if (!/^-?\d+$/.test(text.trim()) || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new UsageError(`--${option}: expected an integer in [${min}, ${max}], got "${text}"`);
  }
  return value;
}

/**
 * `--normalize`: `MEAN/STD` with per-channel lists (0.4914,0.4822,0.4465/0.2471,0.2435,0.2616),
 * or a flat list of 2 (one mean, one std) or 2C values (C means, then C stds).
 */
export function parseNormalize(text: string): Normalization {
  const list = (s: string) => s.split(',').map((v) => parseNumber('normalize', v));
  let mean: number[];
  let std: number[];
  if (text.includes('/') && text.split('/').length === 2) {
    const [m, s] = text.split('/');
    [mean, std] = [list(m!), list(s!)];
  } else {
    const all = list(text);
    if (all.length % 2 !== 0) throw new UsageError(`--normalize: expected MEAN/STD or an even number of values (means, then stds), got "${text}"`);
    [mean, std] = [all.slice(0, all.length / 2), all.slice(all.length / 2)];
  }
  if (mean.length !== std.length) {
    throw new UsageError(
      `--normalize: ${mean.length} mean${mean.length === 1 ? '' : 's'} and ${std.length} std${std.length === 1 ? '' : 's'} in "${text}"; give as many stds as means, one per channel or one for all (e.g. 0.4914,0.4822,0.4465/0.2471,0.2435,0.2616 or 0.5/0.5)`,
    );
  }
  if (std.some((s) => !(s > 0))) throw new UsageError(`--normalize: every std must be > 0, got "${text}"`);
  return { mean, std };
}

/** The API options the command line describes. */
export function evalArguments(values: EvalValues, positionals: string[]): AttackEvaluateOptions {
  if (positionals.length !== 1) throw new UsageError('eval needs exactly one run folder or checkpoint file');
  const target = positionals[0]!;
  let isDir: boolean;
  try {
    const st = statSync(target);
    isDir = st.isDirectory();
    if (!isDir && !st.isFile()) throw new UsageError(`${target}: not a run folder or a checkpoint file (a checkpoint must be a plain file, not a pipe or device)`);
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw new UsageError(`${target}: no such run folder or checkpoint file`);
  }
  if (isDir && !existsSync(path.join(target, 'config.json'))) {
    throw new NotARunFolderError(
      target,
      /\.(safetensors|pt|pth|bin)$/i.test(target)
        ? 'it is a folder, not a checkpoint file, and it has no config.json'
        : 'it has no config.json; give a run folder or a checkpoint file',
    );
  }
  const str = (k: string) => values[k] as string | undefined;
  const which = str('checkpoint');
  if (which !== undefined && !(RUN_CHECKPOINTS as readonly string[]).includes(which)) {
    throw new UsageError(`--checkpoint: expected ${RUN_CHECKPOINTS.join(', ')}, got "${which}"`);
  }
  if (!isDir && which !== undefined) throw new UsageError('--checkpoint picks a checkpoint of a run folder; give the file itself instead');
  const device = str('device');
  if (device !== undefined && !['auto', 'cpu', 'cuda'].includes(device)) throw new UsageError(`--device: expected auto, cpu or cuda, got "${device}"`);
  const evalOverrides: Partial<NativeEvalConfig> = {};
  for (const s of (values.set as string[] | undefined) ?? []) {
    const o = parseSetArgument(s) as { eval?: Partial<NativeEvalConfig> };
    if (!o.eval || Object.keys(o).length !== 1) throw new UsageError(`--set: eval accepts only eval.* keys, got "${s}"`);
    Object.assign(evalOverrides, o.eval);
  }
  if (!isDir && Object.keys(evalOverrides).length > 0) throw new UsageError("--set eval.*: the run's evaluation settings need a run folder");
  if (isDir) {
    for (const k of ['model', 'classes', 'dataset']) {
      if (values[k] !== undefined) throw new UsageError(`--${k}: a run folder's model, classes and dataset come from its config.json`);
    }
  }
  const attacks = str('attacks')
    ?.split(',')
    .map((a) => a.trim())
    .filter((a) => a.length > 0) ?? (isDir ? [...RUN_ATTACKS] : [...PAPER_ATTACKS]);
  if (attacks.length === 0) throw new UsageError('--attacks: expected a comma-separated list, e.g. clean,fgsm,pgd20,pgd100,cw');
  const num = (k: string) => {
    if (str(k) === undefined) return undefined;
    const value = parseNumber(k, str(k)!);
    if (value < 0) throw new UsageError(`--${k}: expected a ${k === 'step' ? 'step size' : 'radius'} >= 0, got "${str(k)}"`);
    return value;
  };
  const int = (k: string, min: number, max: number) => (str(k) === undefined ? undefined : parseInteger(k, str(k)!, min, max));
  const options: AttackEvaluateOptions = {
    ...(isDir ? { runDir: target, checkpoint: (which ?? 'best') as RunCheckpoint } : { file: target }),
    // Typed names for API callers; typed text from here: resolveAttack checks
    // each and its error names it with the closest attack.
    attacks: attacks as AttackName[],
    ...(str('model') !== undefined ? { model: str('model') as ModelName } : {}),
    ...(str('classes') !== undefined ? { numClasses: int('classes', 2, 100_000) } : {}),
    ...(str('dataset') !== undefined ? { dataset: str('dataset') } : {}),
    ...(str('data-dir') !== undefined ? { dataDir: str('data-dir') } : {}),
    ...(str('n') !== undefined ? { n: int('n', 1, 10_000_000) } : {}),
    ...(str('batch') !== undefined ? { batchSize: int('batch', 1, 65_536) } : {}),
    ...(str('eps') !== undefined ? { epsilon: num('eps') } : {}),
    ...(str('step') !== undefined ? { stepSize: num('step') } : {}),
    ...(str('eps-l2') !== undefined ? { epsilonL2: num('eps-l2') } : {}),
    ...(str('seed') !== undefined ? { seed: int('seed', Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER) } : {}),
    ...(str('normalize') !== undefined ? { normalize: parseNormalize(str('normalize')!) } : {}),
    ...(values['final-iterate'] ? { finalIterate: true } : {}),
    ...(str('save-adversarial') !== undefined ? { saveAdversarial: str('save-adversarial') } : {}),
    ...(values['no-write'] ? { write: false } : {}),
    ...(values['no-resume'] ? { resume: false } : {}),
    ...(Object.keys(evalOverrides).length > 0 ? { eval: evalOverrides } : {}),
    ...(device !== undefined ? { device: device as 'auto' | 'cpu' | 'cuda' } : {}),
  };
  return options;
}

/**
 * The JSON `--json` prints: the evaluation, with the run's own evaluation
 * also at the top level (`cleanAcc`, `robustAcc`, `attack`, `epoch`) as
 * `eval` printed before the attack table existed.
 */
export function jsonOutput(e: Evaluation): Record<string, unknown> {
  const legacy = e.run ? { cleanAcc: e.run.cleanAcc, robustAcc: e.run.robustAcc, attack: e.run.attack, epoch: e.run.epoch } : {};
  return { ...e, ...legacy };
}

/**
 * The table as text for the terminal: each accuracy in the precision its
 * image count supports, with its 95% (Wilson) interval.
 */
export function tableText(e: Evaluation): string {
  const width = Math.max(10, ...e.attacks.map((a) => a.name.length), ...e.attacks.flatMap((a) => (a.stages ?? []).map((st) => st.name.length + 8)));
  const row = (label: string, k: number, n: number, rest: string) =>
    `${label.padEnd(width)} ${pctOf(k / n, n).padStart(7)}  ${`(${intervalOf(wilson(k, n), n)})`.padEnd(15)}${String(k).padStart(6)}/${n}${rest}`;
  const lines = e.attacks.flatMap((a) => [
    row(a.name, a.correct, a.samples, a.resumed ? '  (resumed)' : ''),
    ...(a.stages ?? []).map((st) => row(`  after ${st.name}`, st.correct, a.samples, `  ${duration(st.seconds)}`)),
  ]);
  lines.push(row('worst case', e.worstCase.correct, e.samples, '  (robust to clean and every attack)'));
  if (e.run) lines.push(`run's evaluation: clean ${pct(e.run.cleanAcc).trim()}, ${e.run.attack} ${pct(e.run.robustAcc).trim()} (epoch ${e.run.epoch})`);
  lines.push('(accuracy, its 95% interval, images correct)');
  lines.push(`seed ${e.seed}, ${e.samples} ${e.dataset} test images, checkpoint crc32 ${e.checkpointCrc32}${e.verified ? '' : ' (unverified)'}, ${e.device}, ${duration(e.seconds)}`);
  for (const n of e.notices) lines.push(`note: ${n}`);
  if (e.adversarialFile) lines.push(`adversarial inputs: ${e.adversarialFile}`);
  if (e.files) lines.push(`written: ${e.files.json} and ${e.files.markdown}`);
  return lines.join('\n');
}

/** evalArguments, with a bad option's value reported as the API's are: "invalid options:" (exit 2). */
function evalOptionsOf(values: EvalValues, positionals: string[]): AttackEvaluateOptions {
  try {
    return evalArguments(values, positionals);
  } catch (e) {
    if (e instanceof UsageError && e.message.startsWith('--')) throw new OptionsError([{ path: '', message: e.message }]);
    throw e;
  }
}

export async function evalCommand(values: EvalValues, positionals: string[], io: EvalIo): Promise<number> {
  const options = evalOptionsOf(values, positionals);
  const controller = new AbortController();
  // Ctrl-C (or SIGTERM) stops between batches and writes nothing; a second one quits at once.
  let stoppedBy: 'SIGINT' | 'SIGTERM' | null = null;
  const exitFor = (s: 'SIGINT' | 'SIGTERM') => (s === 'SIGINT' ? EXIT.interrupted : EXIT.terminated);
  const onSignal = (signal: 'SIGINT' | 'SIGTERM') => {
    if (stoppedBy !== null) process.exit(exitFor(signal));
    stoppedBy = signal;
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const onOutputClosed = () => controller.abort();
  io.outputClosed?.addEventListener('abort', onOutputClosed, { once: true });
  let onEvent: (e: EvalEvent) => void = () => undefined;
  let finish = () => {};
  if (!values.json && io.tty) {
    const store = new EvalStore();
    const ink = await showEvalDashboard(store);
    onEvent = (e) => store.push(e);
    let finished = false;
    finish = () => {
      if (finished) return;
      finished = true;
      ink.unmount();
    };
  } else if (!values.json) {
    // Progress on stderr: `eval ... > table.txt` holds the table alone.
    const printer = new PlainEvalPrinter(io.err);
    onEvent = (e) => printer.push(e);
  } else {
    // --json: the result on stdout at the end; progress as it happens, one JSON event a line on stderr.
    onEvent = (e) => io.err(JSON.stringify(e));
  }
  let evaluation: Evaluation;
  try {
    evaluation = await evaluateAttacks({ ...options, onEvent, signal: controller.signal });
  } catch (e) {
    if (controller.signal.aborted) {
      finish();
      if (stoppedBy === null) return EXIT.pipeClosed;
      const resumable = options.write !== false && options.resume !== false && options.attacks.some((a) => /^(aa|aa-rand)(-l2)?$/.test(typeof a === 'string' ? a.trim() : a.kind === 'autoAttack' ? 'aa' : ''));
      io.err(
        `${stoppedBy === 'SIGINT' ? 'Ctrl-C' : stoppedBy}: evaluation stopped, no result written` +
          (resumable ? "; the AutoAttack's progress is saved: the same command continues from it" : ''),
      );
      return exitFor(stoppedBy);
    }
    throw e;
  } finally {
    finish();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    io.outputClosed?.removeEventListener('abort', onOutputClosed);
  }
  if (values.json) io.out(JSON.stringify(jsonOutput(evaluation)));
  else io.out(tableText(evaluation));
  // The run folder's report.html now shows this evaluation too (not with --no-write: nothing is written then).
  if (evaluation.target.kind === 'run' && options.write !== false) {
    const report = await autoReport(evaluation.target.runDir);
    if (!values.json) io.err(report.file ? `report: ${report.file}` : `note: ${report.note}`);
    else if (report.note) io.err(`note: ${report.note}`);
  }
  return EXIT.ok;
}

