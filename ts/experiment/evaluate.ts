/**
 * Evaluation of checkpoints, in eval mode, on the test split:
 * - `evaluateRun`: a run's checkpoint under the run's own per-epoch
 *   evaluation (its settings unless overridden), reproducing its numbers.
 * - `evaluateAttacks`: the attack table (clean, FGSM, PGD-20/100, CW-inf,
 *   any PGD, the run's own) with the per-point worst case, for a run folder
 *   or any checkpoint file of a registered model (PyTorch state dicts
 *   included), written as JSON and Markdown next to it.
 */
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, renameSync, statSync } from 'node:fs';
import path from 'node:path';
import { ConfigError, fromZodError } from '../config/errors.js';
import { readJsonFile } from '../config/read-json.js';
import { evalSchema, runConfigSchema, type RunConfig } from '../config/schema.js';
import { datasetInfo, datasets, prepareDataset, type DatasetRequest } from '../data/index.js';
import { RUN_CHECKPOINTS, type RunCheckpoint } from './run-checkpoints.js';
import { loadNative } from '../native.js';
import type {
  AttackResult,
  AttackSpec,
  DeviceChoice,
  EvalEvent,
  EvalReport,
  EvalRequest,
  EvalResult,
  Keep,
  ModelName,
  NativeEvalConfig,
  Norm,
  Normalization,
  RunEval,
  TrainSummary,
} from '../native-types.js';
import { removeStaleTempFiles, writeFileAtomic, writeJsonAtomic } from './files.js';
import { provenance, type Provenance } from './provenance.js';
import { NotARunFolderError, notARunFolderReason } from './run-dir.js';
import { OptionsError } from '../options-error.js';
import { didYouMean } from '../suggest.js';
import { AUTOATTACK_ATTACK, NUMBERED_ATTACK, type AttackName } from '../names.js';

export interface EvaluateOptions {
  runDir: string;
  /** Which checkpoint of the run: default `best`. */
  checkpoint?: RunCheckpoint;
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
  if (!existsSync(file)) throw new NotARunFolderError(runDir, notARunFolderReason(runDir));
  const doc = readJsonFile(file, file);
  const raw = doc !== null && typeof doc === 'object' ? (doc as { config?: unknown }).config : undefined;
  // Another tool's config.json: not a run of ours, rather than a run with a bad config.
  if (raw === null || typeof raw !== 'object') throw new NotARunFolderError(runDir, 'its config.json has no "config" object, so st-native did not write it');
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
function checkpointEpoch(runDir: string, which: RunCheckpoint): number {
  try {
    const summary = readJsonFile(path.join(runDir, 'summary.json'), 'summary.json') as Partial<TrainSummary>;
    // ema-best is written at the selected epoch, as best; ema-last with last.
    const result = which === 'best' || which === 'ema-best' ? summary.best : which === 'last' || which === 'ema-last' ? summary.last : null;
    return result?.epoch ?? 0;
  } catch {
    return 0;
  }
}

/**
 * `<runDir>/checkpoints/<which>.safetensors`, or an error that says which
 * checkpoints the run has: a run cancelled before its first evaluation has
 * `interrupted` and no `best`, and the message points there.
 */
function runCheckpoint(runDir: string, which: RunCheckpoint): string {
  const file = path.join(runDir, 'checkpoints', `${which}.safetensors`);
  if (existsSync(file)) return file;
  const have = RUN_CHECKPOINTS.filter((c) => existsSync(path.join(runDir, 'checkpoints', `${c}.safetensors`)));
  const hint =
    have.length === 0
      ? 'it has no checkpoint at all (the run stopped before one was saved)'
      : `it has ${have.join(', ')}: evaluate ${have.length === 1 ? 'that' : 'one of them'} with --checkpoint ${have[0]} (API: checkpoint: '${have[0]}')`;
  throw new OptionsError([{ path: 'checkpoint', message: `${runDir} has no ${which} checkpoint (${path.join('checkpoints', `${which}.safetensors`)}); ${hint}` }]);
}

export async function evaluateRun(options: EvaluateOptions): Promise<EvalResult> {
  const config = readRunConfig(options.runDir);
  const which = options.checkpoint ?? 'best';
  const evalMerged = { ...config.eval, ...options.eval };
  const parsedEval = evalSchema.safeParse(evalMerged);
  if (!parsedEval.success) {
    const err = fromZodError(parsedEval.error, evalMerged);
    throw new OptionsError(err.issues.map((i) => ({ path: `eval.${i.path}`, message: i.message })));
  }
  const checkpoint = runCheckpoint(options.runDir, which);
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

// ------------------------------------------------------------ the attack table

/** The paper's table (clean, FGSM, PGD-20, PGD-100, CW-inf): the default for a checkpoint file. */
export const PAPER_ATTACKS = ['clean', 'fgsm', 'pgd20', 'pgd100', 'cw'] as const;
/** A run folder's default adds the run's own evaluation, which reproduces its logged number. */
export const RUN_ATTACKS = ['clean', 'run', 'fgsm', 'pgd20', 'pgd100', 'cw'] as const;

/**
 * An attack by name, or spelled out. Names: `clean`; `run` (the run's own
 * per-epoch evaluation); `fgsm`; `pgdN` or `pgd-N` (N steps, e.g. pgd20,
 * pgd-100); `cw` (= cw100) or `cwN`/`cw-N`; `xR` after pgd/cw for R
 * restarts (pgd20x5); `-l2` after fgsm/pgd for the L2 threat model
 * (pgd20-l2); AutoAttack: aa, aa-rand, apgd-ce, apgd-t, apgd-dlr, fab-t,
 * square. Results carry the name as given.
 */
export type AttackInput = AttackName | AttackSpec;

export interface AttackEvaluateOptions {
  /** A run folder of st-native; evaluates its `checkpoint` (default best). */
  runDir?: string;
  checkpoint?: RunCheckpoint;
  /**
   * Or a safetensors file: one of ours (it names its model and class count)
   * or a PyTorch state dict of a registered model (`model` and `numClasses`
   * then say which), with the `dataset` to evaluate on.
   */
  file?: string;
  model?: ModelName;
  numClasses?: number;
  /** Inferred when only one dataset has the model's input shape and class count. */
  dataset?: string;
  /** Where downloaded datasets are (default: the run's, else $ST_NATIVE_DATA_DIR, else the XDG folder). */
  dataDir?: string | null;
  /** In order (`PAPER_ATTACKS`, `RUN_ATTACKS`, or your own). */
  attacks: readonly AttackInput[];
  /** The first N test images (default: a run's own evaluation count, else all). */
  n?: number;
  batchSize?: number;
  /**
   * L-inf radius of the named attacks. Default 8/255 for CIFAR and SVHN; for
   * the digits the run's evaluation radius, else 0.3.
   */
  epsilon?: number;
  /** Step of the named attacks (default 2/255, or the run's; with `epsilon` alone it scales with it). */
  stepSize?: number;
  /** L2 radius of the `-l2` attacks (default 0.5; 2 for the digits); their step is a quarter of it. */
  epsilonL2?: number;
  /** Seeds every random start (default 0). */
  seed?: number;
  /** Per-channel normalisation the model expects, folded in front of it (inputs stay [0,1] images). */
  normalize?: Normalization;
  /** Write the adversarial inputs (float32, as scored) and labels to this safetensors file. */
  saveAdversarial?: string;
  /** Score each attack's final iterate (as the reference code and torchattacks do) instead of the strongest one seen. */
  finalIterate?: boolean;
  /** Overrides of the run's evaluation settings, for the `run` attack. */
  eval?: Partial<NativeEvalConfig>;
  device?: DeviceChoice;
  /** Write `<name>.json` and `<name>.md` next to the run's checkpoints or the file (default true). */
  write?: boolean;
  /**
   * AutoAttacks save their per-point state beside the output
   * (`<name>.<attack>.autoattack-state.safetensors`) and an evaluation with
   * the same settings continues from it (default true; needs `write`).
   */
  resume?: boolean;
  /** Progress: start, each batch (may be dropped under load), each attack, notices. */
  onEvent?: (event: EvalEvent) => unknown;
  /** Aborting stops between batches; the promise rejects with `signal.reason`. */
  signal?: AbortSignal;
}

/** An attack's result with the 95% Wilson interval of its accuracy. */
export type ScoredAttack = AttackResult & { interval95: readonly [number, number] };

/** What `evaluate` with `attacks` resolves with (also the JSON file it writes, with paths relative to its folder). */
export interface Evaluation extends Omit<EvalReport, 'attacks' | 'worstCase'> {
  attacks: ScoredAttack[];
  worstCase: EvalReport['worstCase'] & { interval95: readonly [number, number] };
  /** Which st-native, libtorch, Node, host and command made it. */
  provenance: Provenance;
  target: { kind: 'run'; runDir: string; checkpoint: RunCheckpoint } | { kind: 'file' };
  dataset: string;
  /** The images are the first `samples` of the test split. */
  split: 'test';
  /** The JSON and Markdown files written (null with `write: false`). */
  files: { json: string; markdown: string } | null;
}

interface AttackDefaults {
  epsilon: number;
  stepSize: number;
  epsilonL2: number;
  keep: Keep;
}

const ATTACK_NAME = NUMBERED_ATTACK;
const AUTOATTACK_NAME = AUTOATTACK_ATTACK;

/** AutoAttack's settings for its components: 100 iterations, 1 restart, 9 targets, 5000 queries. */
function autoAttackSpec(kind: string, name: string, norm: Norm, epsilon: number, numClasses: number): AttackSpec {
  const targets = Math.max(1, Math.min(9, numClasses - 1));
  switch (kind) {
    case 'aa':
      return { kind: 'autoAttack', name, norm, epsilon, version: 'standard' };
    case 'aa-rand':
      return { kind: 'autoAttack', name, norm, epsilon, version: 'rand' };
    case 'apgd-ce':
      return { kind: 'apgdCe', name, norm, epsilon, steps: 100, restarts: 1, eotIter: 1 };
    case 'apgd-dlr':
      return { kind: 'apgdDlr', name, norm, epsilon, steps: 100, restarts: 1, eotIter: 1 };
    case 'apgd-t':
      return { kind: 'apgdT', name, norm, epsilon, steps: 100, restarts: 1, targets };
    case 'fab-t':
      return { kind: 'fabT', name, norm, epsilon, steps: 100, restarts: 1, targets };
    default:
      return { kind: 'square', name, norm, epsilon, queries: 5000, restarts: 1 };
  }
}

function attackError(at: string, message: string): ConfigError {
  return new OptionsError([{ path: at, message }]);
}

/** The named attacks, for "did you mean". */
const ATTACK_NAMES = ['clean', 'run', 'fgsm', 'pgd20', 'pgd100', 'cw', 'aa', 'aa-rand', 'apgd-ce', 'apgd-t', 'apgd-dlr', 'fab-t', 'square'];

/** `PGD20` and `pgd_20` mean pgd20; `pgd20l2` means pgd20-l2; else the closest name. */
function attackSuggestion(name: string): string {
  const lower = name.toLowerCase();
  const l2 = /-?l2$/.test(lower) ? '-l2' : '';
  const core = lower.replace(/-?l2$/, '').replace(/[-_ ]/g, '');
  const candidate = `${core}${l2}`;
  if (candidate !== name && (ATTACK_NAME.test(candidate) || AUTOATTACK_NAME.test(candidate))) return ` (did you mean "${candidate}"?)`;
  return didYouMean(name, ATTACK_NAMES);
}

/** A named attack as the native core takes it. */
export function resolveAttack(input: AttackInput, d: AttackDefaults, at = 'attacks', numClasses = 10): AttackSpec {
  if (typeof input !== 'string') return input;
  const name = input.trim();
  if (name === 'clean') return { kind: 'clean', name };
  if (name === 'run') return { kind: 'run', name };
  const aa = AUTOATTACK_NAME.exec(name);
  if (aa) return autoAttackSpec(aa[1]!, name, aa[2] ? 'l2' : 'linf', aa[2] ? d.epsilonL2 : d.epsilon, numClasses);
  const m = ATTACK_NAME.exec(name);
  if (!m) {
    throw attackError(
      at,
      `unknown attack "${input}"${attackSuggestion(name)}; expected clean, run, fgsm, pgdN, cw, cwN (e.g. pgd20 or pgd-20, pgd100x5, pgd20-l2), aa, aa-rand, apgd-ce, apgd-t, apgd-dlr, fab-t or square (-l2 for L2)`,
    );
  }
  const [, fgsm, pgdSteps, cwSteps, restartsText, l2] = m;
  const restarts = restartsText === undefined ? 1 : Number(restartsText);
  if (restarts < 1 || restarts > 1000) throw attackError(at, `"${input}": restarts must be 1 to 1000`);
  const norm: Norm = l2 ? 'l2' : 'linf';
  const epsilon = l2 ? d.epsilonL2 : d.epsilon;
  const stepSize = l2 ? d.epsilonL2 / 4 : d.stepSize;
  if (fgsm) {
    if (restartsText !== undefined) throw attackError(at, `"${input}": FGSM has no random start, so no restarts`);
    return { kind: 'fgsm', name, norm, epsilon, keep: d.keep };
  }
  const steps = Number(pgdSteps ?? cwSteps ?? 100);
  if (!Number.isSafeInteger(steps) || steps < 1 || steps > 10_000) throw attackError(at, `"${input}": steps must be 1 to 10000`);
  if (pgdSteps !== undefined) {
    return { kind: 'pgd', name, norm, epsilon, stepSize, steps, restarts, randomStart: true, keep: d.keep };
  }
  if (l2) throw attackError(at, `"${input}": CW-inf is an L-inf attack (use pgdN-l2 for L2)`);
  return { kind: 'cw', name, epsilon, stepSize, steps, restarts, randomStart: true, keep: d.keep };
}

/**
 * The attack list's names and duplicates, before any file is read or
 * dataset fetched (the radii do not matter to these checks).
 */
function checkAttackNames(inputs: readonly AttackInput[]): void {
  const placeholder: AttackDefaults = { epsilon: 0, stepSize: 0, epsilonL2: 0, keep: 'best' };
  const seen = new Map<string, string>();
  inputs.forEach((input, i) => {
    const { name } = resolveAttack(input, placeholder, `attacks[${i}]`);
    const first = seen.get(sameAttack(name));
    if (first !== undefined) throw attackError(`attacks[${i}]`, `"${name}" is listed twice${first === name ? '' : ` (as "${first}" before it)`}`);
    seen.set(sameAttack(name), name);
  });
}

/** `pgd-20` is `pgd20` (the dash is an alias): the key duplicates are found by. */
const sameAttack = (name: string) => name.replace(/^(pgd|cw)-(?=\d)/, '$1');

const AUTOATTACK_KINDS: ReadonlySet<AttackSpec['kind']> = new Set(['autoAttack', 'apgdCe', 'apgdDlr', 'apgdT', 'fabT', 'square']);

const isDigits = (dataset: string) => dataset.startsWith('mnist');

/** Reads `<runDir>/checkpoints/<which>.safetensors`' run: its config and what the `run` attack replays. */
function runTarget(runDir: string, which: RunCheckpoint, evalOverrides: Partial<NativeEvalConfig> | undefined) {
  const config = readRunConfig(runDir);
  const evalMerged = { ...config.eval, ...evalOverrides };
  const parsedEval = evalSchema.safeParse(evalMerged);
  if (!parsedEval.success) {
    const err = fromZodError(parsedEval.error, evalMerged);
    throw new OptionsError(err.issues.map((i) => ({ path: `eval.${i.path}`, message: i.message })));
  }
  return {
    config,
    file: runCheckpoint(runDir, which),
    run: { eval: parsedEval.data, seed: config.seed, epoch: checkpointEpoch(runDir, which) },
  };
}

/** The one dataset with this input shape and class count, if there is exactly one. */
function inferDataset(shape: readonly number[], numClasses: number): string | null {
  const fits = datasets.filter((d) => d.shape.join('x') === shape.join('x') && d.numClasses === numClasses);
  return fits.length === 1 ? fits[0]!.name : null;
}

/**
 * Why no dataset could be inferred for a checkpoint file: none has the
 * model's input shape, none of those has its class count (which may come
 * from the file), or several fit and one must be named.
 */
function noDatasetInferred(model: string, shape: readonly number[], numClasses: number, classesFromFile: boolean): string {
  const dims = shape.join('x');
  const sameShape = datasets.filter((d) => d.shape.join('x') === dims);
  const known = datasets.map((d) => `${d.name} (${d.shape.join('x')}, ${d.numClasses} classes)`).join(', ');
  if (sameShape.length === 0) return `no dataset has ${model}'s input shape ${dims}; the datasets are ${known}`;
  const fits = sameShape.filter((d) => d.numClasses === numClasses);
  if (fits.length === 0) {
    const which = sameShape.map((d) => `${d.name} has ${d.numClasses}`).join(', ');
    return `no dataset of ${model}'s input shape ${dims} has ${numClasses} classes (${which})${classesFromFile ? '; the class count is what the file records' : ''}; give the dataset, or a class count that fits one`;
  }
  return `${fits.map((d) => d.name).join(' and ')} ${fits.length === 2 ? 'both' : 'all'} fit a ${model} with ${numClasses} classes; name the dataset`;
}

/** Where the JSON and Markdown go: beside a run's checkpoints folder, or beside the file. */
function outputStem(target: Evaluation['target'], file: string): string {
  if (target.kind === 'run') return path.join(target.runDir, `eval-${target.checkpoint}`);
  return file.replace(/\.safetensors$/, '') + '.eval';
}

export async function evaluateAttacks(options: AttackEvaluateOptions): Promise<Evaluation> {
  if ((options.runDir === undefined) === (options.file === undefined)) {
    throw new OptionsError([{ path: 'runDir', message: 'expected either a run folder (runDir) or a checkpoint file (file), not both or neither' }]);
  }
  checkAttackNames(options.attacks);
  let target: Evaluation['target'];
  let file: string;
  let model: ModelName;
  let numClasses: number;
  let dataset: string;
  let dataRequest: DatasetRequest;
  let run: RunEval | null = null;
  let defaultN: number | null = null;
  let defaultBatch = 256;
  let device: DeviceChoice = options.device ?? 'auto';
  if (options.runDir !== undefined) {
    for (const key of ['model', 'numClasses', 'dataset'] as const) {
      if (options[key] !== undefined) throw new OptionsError([{ path: key, message: "a run folder's model, classes and dataset come from its config.json; leave it out" }]);
    }
    const which = options.checkpoint ?? 'best';
    const t = runTarget(options.runDir, which, options.eval);
    target = { kind: 'run', runDir: options.runDir, checkpoint: which };
    file = t.file;
    model = t.config.model;
    dataset = t.config.dataset.name;
    numClasses = datasetInfo(dataset).numClasses;
    dataRequest = { ...t.config.dataset, ...(options.dataDir !== undefined ? { dataDir: options.dataDir } : {}) };
    run = t.run;
    defaultN = t.run.eval.maxSamples;
    defaultBatch = t.run.eval.batchSize;
    device = options.device ?? t.config.device;
  } else {
    if (options.checkpoint !== undefined) throw new OptionsError([{ path: 'checkpoint', message: 'best, last, interrupted, ema-best or ema-last pick a checkpoint of a run folder; with a file, leave it out' }]);
    if (options.eval !== undefined) throw new OptionsError([{ path: 'eval', message: "the run's evaluation settings need a run folder" }]);
    file = options.file!;
    target = { kind: 'file' };
    refusePytorchPickle(file);
    const info = loadNative().inspectCheckpoint(file);
    const named = options.model ?? (info.model as ModelName | null);
    if (!named) {
      throw new OptionsError([{ path: 'model', message: `${file} does not say which model it holds (a PyTorch state dict): name it (one of ${loadNative().listModels(10).map((m) => m.name).join(', ')})` }]);
    }
    model = named;
    const classes = options.numClasses ?? info.numClasses ?? (options.dataset !== undefined ? datasetInfo(options.dataset).numClasses : null);
    if (classes === null) throw new OptionsError([{ path: 'numClasses', message: `${file} does not say its class count: give it (or the dataset)` }]);
    numClasses = classes;
    const shape = loadNative().listModels(Math.max(2, numClasses)).find((m) => m.name === model)?.inputShape;
    if (!shape) throw new OptionsError([{ path: 'model', message: `unknown model "${model}"` }]);
    const ds = options.dataset ?? inferDataset(shape, numClasses);
    if (ds === null) throw new OptionsError([{ path: 'dataset', message: noDatasetInferred(model, shape, numClasses, info.numClasses !== null && options.numClasses === undefined) }]);
    dataset = ds;
    if (datasetInfo(dataset).numClasses !== numClasses) {
      throw new OptionsError([{ path: 'numClasses', message: `${dataset} has ${datasetInfo(dataset).numClasses} classes, not ${numClasses}` }]);
    }
    dataRequest = { trainSize: null, testSize: null, dataDir: options.dataDir ?? null };
    // A file of another architecture fails here, before any dataset download
    // (a dataset of another shape is left to the core's message).
    if (datasetInfo(dataset).shape.join('x') === shape.join('x')) loadNative().checkCheckpoint(file, model, numClasses, shape);
  }
  // Radii: the paper's for the 32x32 datasets; for the digits the run's, else the usual 0.3.
  const base = isDigits(dataset)
    ? run
      ? { epsilon: run.eval.epsilon, stepSize: run.eval.stepSize, epsilonL2: 2 }
      : { epsilon: 0.3, stepSize: 0.01, epsilonL2: 2 }
    : { epsilon: 8 / 255, stepSize: 2 / 255, epsilonL2: 0.5 };
  const epsilon = options.epsilon ?? base.epsilon;
  const defaults: AttackDefaults = {
    epsilon,
    stepSize: options.stepSize ?? (options.epsilon !== undefined && base.epsilon > 0 ? (base.stepSize * epsilon) / base.epsilon : base.stepSize),
    epsilonL2: options.epsilonL2 ?? base.epsilonL2,
    keep: options.finalIterate ? 'last' : 'best',
  };
  const attacks = options.attacks.map((a, i) => resolveAttack(a, defaults, `attacks[${i}]`, numClasses));
  attacks.forEach((a, i) => {
    if (a.kind === 'run' && run === null) throw attackError(`attacks[${i}]`, "run (the run's own evaluation) needs a run folder");
  });
  // AutoAttack reports robust accuracy alone, which is read against the
  // clean accuracy: a table of AutoAttacks only gets the clean row first
  // (one forward pass), as AutoAttack's own report has it.
  const cleanAdded = attacks.every((a) => AUTOATTACK_KINDS.has(a.kind)) && !attacks.some((a) => a.name === 'clean');
  if (cleanAdded) attacks.unshift({ kind: 'clean', name: 'clean' });
  const data = await prepareDataset(dataset, dataRequest);
  const available = data.test.labels.length;
  const requestedN = options.n ?? defaultN;
  const shortfall =
    requestedN !== null && requestedN > available
      ? `asked for ${requestedN.toLocaleString('en-US')} images; the ${dataset} test split has ${available.toLocaleString('en-US')}, so all ${available.toLocaleString('en-US')} were evaluated`
      : null;
  const stem = outputStem(target, file);
  const writes = options.write !== false;
  // A writer killed mid-write (kill -9 during an AutoAttack state save)
  // left its temp file; nothing will ever rename it.
  if (writes) removeStaleTempFiles(path.dirname(path.resolve(stem)));
  const request: EvalRequest = {
    checkpoint: file,
    model,
    numClasses,
    attacks,
    batchSize: options.batchSize ?? defaultBatch,
    maxSamples: options.n ?? defaultN,
    seed: options.seed ?? 0,
    normalize: options.normalize ?? null,
    device,
    saveAdversarial: options.saveAdversarial === undefined ? null : path.resolve(options.saveAdversarial),
    run,
    resumePrefix: writes && options.resume !== false ? path.resolve(stem) : null,
    dataSource: { dataset, split: 'test' },
  };
  const onEvent = options.onEvent ?? (() => undefined);
  if (shortfall) onEvent({ type: 'notice', message: shortfall });
  const report = await loadNative()
    .evaluateAttacks(request, { ...data.test, channels: data.channels, height: data.height, width: data.width }, onEvent, options.signal)
    .catch((e: unknown) => {
      throw cleanAdded ? renumberAttacks(e, 1) : e;
    });
  const evaluation: Evaluation = {
    ...report,
    attacks: report.attacks.map((a) => ({ ...a, interval95: wilson(a.correct, a.samples) })),
    worstCase: { ...report.worstCase, interval95: wilson(report.worstCase.correct, report.samples) },
    target,
    dataset,
    split: 'test',
    files: null,
    provenance: provenance(report.libtorch),
  };
  if (shortfall) evaluation.notices = [shortfall, ...evaluation.notices];
  if (writes) {
    evaluation.files = { json: `${stem}.json`, markdown: `${stem}.md` };
    const kept = keepPrevious(stem);
    if (kept) {
      const message = `the previous ${path.basename(stem)}.json/.md were kept as ${path.relative(path.dirname(stem), kept)}.json/.md`;
      evaluation.notices = [...evaluation.notices, message];
      onEvent({ type: 'notice', message });
    }
    writeJsonAtomic(evaluation.files.json, relativePaths(evaluation, path.dirname(path.resolve(stem))));
    writeFileAtomic(evaluation.files.markdown, markdownReport(evaluation));
  }
  return evaluation;
}

/**
 * The core numbers the attacks of the list it was given, which starts with
 * the clean row added to a table of AutoAttacks only; the caller's list
 * does not have it, so `attacks[i]` in a message names the caller's `i`.
 */
function renumberAttacks(e: unknown, shift: number): unknown {
  if (!(e instanceof Error)) return e;
  const fix = (s: string) => s.replace(/attacks\[(\d+)\]/g, (_, i: string) => `attacks[${Number(i) - shift}]`);
  e.message = fix(e.message);
  const issues = (e as { issues?: unknown }).issues;
  if (Array.isArray(issues)) {
    for (const issue of issues as { path?: unknown }[]) if (typeof issue.path === 'string') issue.path = fix(issue.path);
  }
  return e;
}

// ------------------------------------------------------------ files

/**
 * A PyTorch pickle (`torch.save`: a zip archive, or a bare pickle) instead
 * of safetensors: st-native never unpickles (it can run code), so say how
 * to convert it once.
 */
function refusePytorchPickle(file: string): void {
  let head: Buffer;
  try {
    const fd = openSync(file, 'r');
    try {
      head = Buffer.alloc(4);
      readSync(fd, head, 0, 4, 0);
    } finally {
      closeSync(fd);
    }
  } catch {
    return; // the native reader reports what is wrong with it
  }
  const zip = head.subarray(0, 4).equals(Buffer.from([0x50, 0x4b, 0x03, 0x04]));
  const pickle = head[0] === 0x80 && head[1]! >= 2 && head[1]! <= 5;
  if (!zip && !pickle) return;
  const out = file.replace(/\.(pt|pth|ckpt|bin|tar)$/i, '') + '.safetensors';
  throw new OptionsError([
    {
      path: 'file',
      message:
        `${file} is a PyTorch pickle (torch.save), which st-native does not read (unpickling can run code). Convert it once with the PyTorch that saved it:\n` +
        `    python3 -c "import torch; from safetensors.torch import save_file; sd = torch.load('${file}', map_location='cpu'); sd = sd.get('state_dict', sd.get('model', sd)); save_file({k: v.contiguous() for k, v in sd.items()}, '${out}')"\n` +
        `  then evaluate ${out} (a \`module.\` prefix from DataParallel is dropped on load)`,
    },
  ]);
}

/**
 * Before an evaluation overwrites `<stem>.json/.md`, the earlier pair moves
 * to `eval-history/<name>-<its time>.json/.md` beside it: no table is lost.
 * Returns the new stem of the kept pair, or null when there was none.
 */
function keepPrevious(stem: string): string | null {
  const json = `${stem}.json`;
  if (!existsSync(json)) return null;
  let when = statSync(json).mtime;
  try {
    const time = (JSON.parse(readFileSync(json, 'utf8')) as { provenance?: { time?: string } }).provenance?.time;
    if (time && !Number.isNaN(Date.parse(time))) when = new Date(time);
  } catch {
    /* unreadable: kept all the same, named by its modification time */
  }
  const dir = path.join(path.dirname(stem), 'eval-history');
  mkdirSync(dir, { recursive: true });
  const base = `${path.basename(stem)}-${when.toISOString().replace(/[:]/g, '-').replace(/\..*$/, '')}`;
  let kept = path.join(dir, base);
  for (let i = 2; existsSync(`${kept}.json`); i++) kept = path.join(dir, `${base}-${i}`);
  if (existsSync(`${stem}.md`)) renameSync(`${stem}.md`, `${kept}.md`);
  renameSync(json, `${kept}.json`);
  return kept;
}

/** The paths inside a written evaluation, relative to its folder (a copied folder stays right). */
function relativePaths(e: Evaluation, folder: string): Evaluation {
  const rel = (p: string) => path.relative(folder, path.resolve(p)) || '.';
  return {
    ...e,
    checkpoint: rel(e.checkpoint),
    adversarialFile: e.adversarialFile === null ? null : rel(e.adversarialFile),
    target: e.target.kind === 'run' ? { ...e.target, runDir: rel(e.target.runDir) } : e.target,
    files: e.files === null ? null : { json: rel(e.files.json), markdown: rel(e.files.markdown) },
  };
}

/** The 95% Wilson score interval of k successes in n trials. */
export function wilson(k: number, n: number): readonly [number, number] {
  if (n <= 0) return [0, 1];
  const z = 1.959963984540054;
  const p = k / n;
  const denom = 1 + (z * z) / n;
  const centre = (p + (z * z) / (2 * n)) / denom;
  const half = (z * Math.sqrt((p * (1 - p)) / n + (z * z) / (4 * n * n))) / denom;
  return [Math.max(0, centre - half), Math.min(1, centre + half)];
}

// ------------------------------------------------------------ reporting

/** 0.0314 as "8/255" when it is one (and not a short decimal such as 0.2), else the number. */
export function pixels(x: number): string {
  const k = x * 255;
  const short = Number(x.toFixed(3)) === x;
  if (x > 0 && !short && Math.abs(k - Math.round(k)) < 1e-6) return `${Math.round(k)}/255`;
  return String(Number(x.toPrecision(4)));
}

/** The settings of an attack in a few words. */
export function describeAttack(spec: AttackSpec, e: Pick<Evaluation, 'run'> | null = null): string {
  const keep = (k: Keep) => (k === 'best' ? 'strongest iterate' : 'final iterate');
  const ball = (norm: Norm, eps: number) => `${norm === 'l2' ? 'L2' : 'L∞'} eps ${pixels(eps)}`;
  switch (spec.kind) {
    case 'clean':
      return 'no attack';
    case 'run':
      return e?.run ? `the run's evaluation (${e.run.attack}, epoch ${e.run.epoch}, its seed and batches, final iterate)` : "the run's evaluation";
    case 'fgsm':
      return `FGSM, ${ball(spec.norm, spec.epsilon)}, one step, ${keep(spec.keep)}`;
    case 'apgdCe':
    case 'apgdDlr':
      return `APGD on ${spec.kind === 'apgdCe' ? 'cross-entropy' : 'DLR'}, ${ball(spec.norm, spec.epsilon)}, ${spec.steps} iterations, ${spec.restarts} restart${spec.restarts === 1 ? '' : 's'}${spec.eotIter > 1 ? `, ${spec.eotIter} gradients averaged (EOT)` : ''}`;
    case 'apgdT':
      return `APGD-T (targeted DLR), ${ball(spec.norm, spec.epsilon)}, ${spec.targets} targets × ${spec.steps} iterations, ${spec.restarts} restart${spec.restarts === 1 ? '' : 's'}`;
    case 'fabT':
      return `FAB-T (targeted, minimum norm), ${ball(spec.norm, spec.epsilon)}, ${spec.targets} targets × ${spec.steps} iterations`;
    case 'square':
      return `Square (score-based), ${ball(spec.norm, spec.epsilon)}, ${spec.queries} queries`;
    case 'autoAttack':
      return spec.version === 'standard'
        ? `AutoAttack standard (APGD-CE, APGD-T, FAB-T, Square), ${ball(spec.norm, spec.epsilon)}`
        : `AutoAttack rand (APGD-CE, APGD-DLR, 20 gradients averaged), ${ball(spec.norm, spec.epsilon)}`;
    case 'pgd':
    case 'cw': {
      const what = spec.kind === 'cw' ? 'CW-inf (PGD on the CW margin)' : 'PGD';
      const restarts = spec.restarts === 1 ? '' : `, ${spec.restarts} restarts`;
      return `${what}, ${ball(spec.kind === 'cw' ? 'linf' : spec.norm, spec.epsilon)}, step ${pixels(spec.stepSize)}, ${spec.steps} steps${restarts}${spec.randomStart ? ', random start' : ''}, ${keep(spec.keep)}`;
    }
  }
}

const pct2 = (x: number) => `${(100 * x).toFixed(2)}%`;

/** The evaluation as a Markdown document: the table, then how it was made. */
export function markdownReport(e: Evaluation): string {
  const interval = (k: number, n: number) => {
    const [lo, hi] = wilson(k, n);
    return `${(100 * lo).toFixed(1)}–${(100 * hi).toFixed(1)}%`;
  };
  const rows = e.attacks.flatMap((a) => [
    `| ${a.name} | ${pct2(a.accuracy)} | ${interval(a.correct, a.samples)} | ${a.correct} / ${a.samples} | ${describeAttack(a.spec, e)}${a.resumed ? ' (resumed from a saved state)' : ''} |`,
    ...(a.stages ?? []).map((st) => `| &nbsp;&nbsp;after ${st.name} | ${pct2(st.accuracy)} | ${interval(st.correct, a.samples)} | ${st.correct} / ${a.samples} | attacked ${st.attacked} images, ${st.seconds.toFixed(1)} s |`),
  ]);
  // The run by its folder's name: an absolute path says where it was, not what it is.
  const target = e.target.kind === 'run' ? `${e.target.checkpoint} checkpoint of run ${path.basename(path.resolve(e.target.runDir))}` : path.basename(e.checkpoint);
  const p = e.provenance;
  const norm = e.normalize ? `(x - [${e.normalize.mean.join(', ')}]) / [${e.normalize.std.join(', ')}] in front of the model` : 'none (the model takes [0,1] images)';
  return [
    `# Robustness of ${target}`,
    '',
    '| attack | accuracy | 95% interval | correct | settings |',
    '|---|---:|---:|---:|---|',
    ...rows,
    `| **worst case** | **${pct2(e.worstCase.accuracy)}** | ${interval(e.worstCase.correct, e.samples)} | ${e.worstCase.correct} / ${e.samples} | robust only if correct clean and under every attack above |`,
    '',
    `- model: ${e.model}, ${e.numClasses} classes; checkpoint ${e.checkpoint} (crc32 ${e.checkpointCrc32}, ${e.verified ? 'verified' : 'not written by st-native: unverified'}${e.epoch !== null ? `, epoch ${e.epoch}` : ''})`,
    `- images: the first ${e.samples} of the ${e.dataset} ${e.split} split, in [0,1]; normalisation: ${norm}`,
    `- seed ${e.seed}; batch size ${e.batchSize}; eval mode (running BatchNorm statistics, no dropout); device ${e.device}; libtorch ${e.libtorch}; ${e.seconds.toFixed(1)} s`,
    ...(e.adversarialFile ? [`- adversarial inputs: ${e.adversarialFile}`] : []),
    `- intervals: 95% Wilson score intervals over the ${e.samples} images`,
    `- made by st-native ${p.stNative}${p.gitCommit ? ` (git ${p.gitCommit})` : ''}, libtorch ${p.libtorch ?? 'unknown'}, Node ${p.node}, on ${p.host} (${p.platform}) at ${p.time}${p.command ? `: \`${p.command}\`` : ' (API call)'}`,
    ...e.notices.map((n) => `- note: ${n}`),
    '',
  ].join('\n');
}
