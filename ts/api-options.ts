/**
 * Run-time checks of the options of the public `train` and `evaluate`: the
 * TypeScript types vanish for JavaScript callers, and `train(42)` or
 * `train({ onEvent: 5 })` must fail up front with a ConfigError naming the
 * option rather than with a TypeError deep inside a run.
 */
import { z } from 'zod';
import { fromZodError } from './config/errors.js';
import { OptionsError } from './options-error.js';
import type { ConfigOverrides } from './config/presets.js';
import { evalSchema, precisionSchema } from './config/schema.js';
import { RUN_CHECKPOINTS } from './experiment/run-checkpoints.js';
import type { AttackEvaluateOptions, EvaluateOptions } from './experiment/evaluate.js';
import type { PresetName } from './names.js';
import type { AttackSpec, EvalEvent, TrainEvent } from './native-types.js';

/** Eval overrides: every field optional, and no defaults filled in (a default would override the run's own value). */
const evalOverrides = evalSchema.extend({ precision: precisionSchema.optional() }).partial();

export interface TrainOptions {
  /**
   * Named preset to start from (default `mnist-st-quick`); see `presets`.
   * A name from elsewhere (a string) is narrowed with `isPresetName`.
   */
  preset?: PresetName;
  /** Overrides on the preset, applied in order; nested objects merge. */
  overrides?: ConfigOverrides | readonly ConfigOverrides[];
  /**
   * Receives every event of the run, in order. If it throws, or returns a
   * promise that rejects, training stops (saving `interrupted.safetensors`)
   * and `train` rejects with that error.
   */
  onEvent?: (event: TrainEvent) => unknown;
  /**
   * Aborting stops training within one step, saves `interrupted.safetensors`
   * and resolves with `summary.status === 'cancelled'` (the run exists and
   * its checkpoint is what the caller needs). A signal aborted before the
   * call rejects with `signal.reason` (an `AbortError` by default), as
   * `fetch` does, and nothing is created.
   */
  signal?: AbortSignal;
  /**
   * Train in a child process of its own: same events, result and
   * cancellation, and a crash or kill of that process rejects with an
   * IsolatedRunError (`ERR_CHILD_DIED`) instead of ending the caller's.
   */
  isolate?: boolean;
  /** libtorch threads, over the config's; isolated runs default to a share of the cores. */
  threads?: number;
}

/** An object literal or JSON object: not an array, class instance, Map, or object with a swapped prototype. */
function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** A plain object, checked before `inner` (z.object alone accepts Dates, Maps and class instances). */
function plainObject<T>(inner: z.ZodType<T>) {
  return z.custom<unknown>(isPlainObject, 'expected a plain object').pipe(inner);
}

/** One check with one message: a zod union would report a bare "Invalid input". */
const overridesOption = z.custom<ConfigOverrides | ConfigOverrides[]>(
  (v) => isPlainObject(v) || (Array.isArray(v) && v.every(isPlainObject)),
  'expected a config object or an array of config objects',
);

export const trainOptionsSchema = plainObject(
  z
    .object({
      preset: z.string().optional(),
      // The contents are judged by resolveConfig, which names the config field.
      overrides: overridesOption.optional(),
      onEvent: z.custom<(event: TrainEvent) => unknown>((v) => typeof v === 'function', 'expected a function').optional(),
      signal: z.custom<AbortSignal>((v) => v instanceof AbortSignal, 'expected an AbortSignal').optional(),
      isolate: z.boolean().optional(),
      // The range (1..cores) is checked by runExperiment, which names options.threads.
      threads: z.number().int().min(1).optional(),
    })
    .strict(),
);

export const evaluateOptionsSchema = plainObject(
  z
    .object({
      runDir: z.string().min(1).max(4096),
      checkpoint: z.enum(RUN_CHECKPOINTS).optional(),
      // Partial eval settings, checked field by field here so a bad one is named as options.eval.<field>.
      eval: plainObject(evalOverrides).optional(),
      device: z.enum(['auto', 'cpu', 'cuda']).optional(),
    })
    .strict(),
);

const finite = z.number();
const keepSchema = z.enum(['best', 'last']);
const normSchema = z.enum(['linf', 'l2']);
const attackName = z.string().min(1).max(100);
const ball = { name: attackName, epsilon: finite.min(0).max(1000), keep: keepSchema };
const iterations = z.number().int().min(0).max(10_000);
const restarts = z.number().int().min(1).max(1000);
const descent = { ...ball, stepSize: finite.min(0).max(1000), steps: z.number().int().min(0).max(10_000), restarts: z.number().int().min(1).max(1000), randomStart: z.boolean() };
/** An attack spelled out (the native core checks the ranges once more). */
const attackSpecSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('clean'), name: attackName }).strict(),
  z.object({ kind: z.literal('run'), name: attackName }).strict(),
  z.object({ kind: z.literal('fgsm'), norm: normSchema, ...ball }).strict(),
  z.object({ kind: z.literal('pgd'), norm: normSchema, ...descent }).strict(),
  z.object({ kind: z.literal('cw'), ...descent }).strict(),
  ...(['apgdCe', 'apgdDlr'] as const).map((kind) =>
    z.object({ kind: z.literal(kind), name: attackName, norm: normSchema, epsilon: finite.min(0).max(1000), steps: iterations, restarts, eotIter: z.number().int().min(1).max(1000) }).strict(),
  ),
  ...(['apgdT', 'fabT'] as const).map((kind) =>
    z.object({ kind: z.literal(kind), name: attackName, norm: normSchema, epsilon: finite.min(0).max(1000), steps: iterations, restarts, targets: z.number().int().min(1).max(99_999) }).strict(),
  ),
  z.object({ kind: z.literal('square'), name: attackName, norm: normSchema, epsilon: finite.min(0).max(1000), queries: z.number().int().min(1).max(100_000), restarts }).strict(),
  z.object({ kind: z.literal('autoAttack'), name: attackName, norm: normSchema, epsilon: finite.min(0).max(1000), version: z.enum(['standard', 'rand']) }).strict(),
]);
const channelValues = z.array(finite).min(1).max(64);

/** `evaluate` with `attacks`: the attack table (see AttackEvaluateOptions). */
export const attackEvaluateOptionsSchema = plainObject(
  z
    .object({
      runDir: z.string().min(1).max(4096).optional(),
      checkpoint: z.enum(RUN_CHECKPOINTS).optional(),
      file: z.string().min(1).max(4096).optional(),
      model: z.string().min(1).max(100).optional(),
      numClasses: z.number().int().min(2).max(100_000).optional(),
      dataset: z.enum(['mnist-embedded', 'cifar10', 'cifar100', 'svhn']).optional(),
      dataDir: z.string().min(1).max(4096).nullable().optional(),
      attacks: z.array(z.union([attackName, attackSpecSchema])).min(1).max(64),
      n: z.number().int().min(1).max(10_000_000).optional(),
      batchSize: z.number().int().min(1).max(65_536).optional(),
      epsilon: finite.min(0).max(1).optional(),
      stepSize: finite.min(0).max(1).optional(),
      epsilonL2: finite.min(0).max(1000).optional(),
      seed: z.number().int().min(Number.MIN_SAFE_INTEGER).max(Number.MAX_SAFE_INTEGER).optional(),
      normalize: z.object({ mean: channelValues, std: channelValues.refine((v) => v.every((x) => x > 0), 'expected every std > 0') }).strict().optional(),
      saveAdversarial: z.string().min(1).max(4096).optional(),
      finalIterate: z.boolean().optional(),
      eval: plainObject(evalOverrides).optional(),
      device: z.enum(['auto', 'cpu', 'cuda']).optional(),
      write: z.boolean().optional(),
      resume: z.boolean().optional(),
      onEvent: z.custom<(event: EvalEvent) => unknown>((v) => typeof v === 'function', 'expected a function').optional(),
      signal: z.custom<AbortSignal>((v) => v instanceof AbortSignal, 'expected an AbortSignal').optional(),
    })
    .strict(),
);

/** Parses with `schema`; issues are named from `options`, e.g. `options.onEvent`. */
function parseOptions<T>(schema: z.ZodType<T>, options: unknown): T {
  const parsed = schema.safeParse(options);
  if (parsed.success) return parsed.data;
  const err = fromZodError(parsed.error, options);
  throw new OptionsError(err.issues.map((i) => ({ path: i.path ? `options.${i.path}` : 'options', message: i.message })));
}

/**
 * Checks `train`'s options; undefined means "all defaults". Throws
 * ConfigError. The preset stays a string: resolveConfig names an unknown one
 * with the closest preset.
 */
export function parseTrainOptions(options: unknown): Omit<TrainOptions, 'preset'> & { preset?: string } {
  return options === undefined ? {} : parseOptions(trainOptionsSchema, options);
}

/**
 * Checks `evaluate`'s options: with `attacks`, the attack table's; without,
 * the run's own evaluation's. Throws ConfigError.
 */
export function parseEvaluateOptions(options: unknown): EvaluateOptions | AttackEvaluateOptions {
  if (isPlainObject(options) && Object.hasOwn(options, 'attacks')) {
    return parseOptions(attackEvaluateOptionsSchema, options) as AttackEvaluateOptions;
  }
  return parseOptions(evaluateOptionsSchema, options);
}

// The spelled-out attacks accept exactly the native contract's shapes (a
// kind added in Rust must be added above, or this stops compiling).
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const sameAttackSpec: Same<z.infer<typeof attackSpecSchema>, AttackSpec> = true;
void sameAttackSpec;
