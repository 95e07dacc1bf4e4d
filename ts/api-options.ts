/**
 * Run-time checks of the options of the public `train` and `evaluate`: the
 * TypeScript types vanish for JavaScript callers, and `train(42)` or
 * `train({ onEvent: 5 })` must fail up front with a ConfigError naming the
 * option rather than with a TypeError deep inside a run.
 */
import { z } from 'zod';
import { ConfigError, fromZodError } from './config/errors.js';
import type { ConfigOverrides } from './config/presets.js';
import { evalSchema } from './config/schema.js';
import type { EvaluateOptions } from './experiment/evaluate.js';
import type { TrainEvent } from './native-types.js';

export interface TrainOptions {
  /** Named preset to start from (default `mnist-st-quick`); see `presets`. */
  preset?: string;
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
    })
    .strict(),
);

export const evaluateOptionsSchema = plainObject(
  z
    .object({
      runDir: z.string().min(1).max(4096),
      checkpoint: z.enum(['best', 'last', 'interrupted']).optional(),
      // Partial eval settings, checked field by field here so a bad one is named as options.eval.<field>.
      eval: plainObject(evalSchema.partial()).optional(),
      device: z.enum(['auto', 'cpu', 'cuda']).optional(),
    })
    .strict(),
);

/** Parses with `schema`; issues are named from `options`, e.g. `options.onEvent`. */
function parseOptions<T>(schema: z.ZodType<T>, options: unknown): T {
  const parsed = schema.safeParse(options);
  if (parsed.success) return parsed.data;
  const err = fromZodError(parsed.error, options);
  throw new ConfigError(err.issues.map((i) => ({ path: i.path ? `options.${i.path}` : 'options', message: i.message })));
}

/** Checks `train`'s options; undefined means "all defaults". Throws ConfigError. */
export function parseTrainOptions(options: unknown): TrainOptions {
  return options === undefined ? {} : parseOptions(trainOptionsSchema, options);
}

/** Checks `evaluate`'s options. Throws ConfigError. */
export function parseEvaluateOptions(options: unknown): EvaluateOptions {
  return parseOptions(evaluateOptionsSchema, options);
}
