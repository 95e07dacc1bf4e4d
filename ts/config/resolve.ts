/**
 * Turns "preset + overrides" into a validated RunConfig, and a RunConfig into
 * what the native core receives.
 *
 * Overrides come from users (a config file, `--set`, the API), so before they
 * are merged each one is copied into fresh plain data by an iterative walk
 * that rejects what could hurt the merge itself: prototype keys, absurd
 * nesting (which would overflow the stack of any recursive step after it),
 * getters and non-JSON objects. Only then does zod judge the values.
 */
import path from 'node:path';
import { ConfigError, describeValue, fromZodError } from './errors.js';
import { baseConfig, DEFAULT_PRESET, findPreset, presets } from './presets.js';
import { runConfigSchema, type RunConfig } from './schema.js';
import { extraFilePath } from '../data/extra-run.js';
import type { NativeTrainConfig } from '../native-types.js';
import { didYouMean } from '../suggest.js';

type Json = unknown;
type Container = Record<string, Json> | Json[];

/** Keys that reach prototype machinery when assigned; never config fields. */
const RESERVED_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);
/** Longest key path an override may have; the real config is 3 deep (optimizer.milestones.0). */
export const MAX_OVERRIDE_DEPTH = 16;
/** Most items of any override array (the only config array, milestones, allows far fewer). */
export const MAX_OVERRIDE_ARRAY_ITEMS = 10_000;

const reservedMessage = 'reserved key (__proto__, constructor and prototype are never config fields)';

function fail(keys: readonly string[], message: string): ConfigError {
  return new ConfigError([{ path: keys.join('.'), message }]);
}

/** A JSON object: no class instance, Map, Date, boxed value... and no swapped prototype. */
function isPlainObject(v: Json): v is Record<string, Json> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** Defines an own data property, so even a key named `__proto__` could never reach the prototype. */
function setOwn(target: Record<string, Json>, key: string, value: Json): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

/** JSON and the native core have no negative zero; normalising it keeps the TS-side record equal to what the core gets. */
function leaf(v: Json): Json {
  return typeof v === 'number' && Object.is(v, -0) ? 0 : v;
}

/**
 * The empty copy of a container (undefined for leaves). An object whose
 * prototype is itself a plain object is what the literal `{ __proto__: {...} }`
 * builds, so it is reported as that reserved key.
 */
function shellOf(v: Json, keys: readonly string[]): Container | undefined {
  if (Array.isArray(v)) return [];
  if (v === null || typeof v !== 'object') return undefined;
  if (isPlainObject(v)) return {};
  const proto: unknown = Object.getPrototypeOf(v);
  if (isPlainObject(proto) && !Object.hasOwn(proto, 'constructor')) throw fail([...keys, '__proto__'], reservedMessage);
  const tag = Object.prototype.toString.call(v).slice(8, -1);
  const what = tag === 'Object' ? 'an instance of a class' : `a ${tag}`;
  throw fail(keys, `expected plain JSON data (objects, arrays, strings, numbers, true, false, null), got ${what}`);
}

/** Own data entries of a container; reading a getter could run (or throw from) arbitrary code. */
function entriesOf(source: object, keys: readonly string[]): [string, Json][] {
  const names = Array.isArray(source) ? arrayIndices(source, keys) : Object.keys(source);
  const out: [string, Json][] = [];
  for (const name of names) {
    if (RESERVED_KEYS.has(name)) throw fail([...keys, name], reservedMessage);
    const desc = Object.getOwnPropertyDescriptor(source, name);
    if (desc && (desc.get || desc.set)) throw fail([...keys, name], 'expected a plain value, got a getter or setter');
    out.push([name, desc?.value]);
  }
  return out;
}

function arrayIndices(source: readonly unknown[], keys: readonly string[]): string[] {
  if (source.length > MAX_OVERRIDE_ARRAY_ITEMS) {
    throw fail(keys, `expected at most ${MAX_OVERRIDE_ARRAY_ITEMS} items, got ${source.length}`);
  }
  return Array.from({ length: source.length }, (_, i) => String(i));
}

/**
 * Copies an override into fresh plain data (own data properties only),
 * rejecting reserved keys at any depth and key paths longer than
 * MAX_OVERRIDE_DEPTH. Iterative, so no input can overflow the stack here, and
 * every later recursive step (merge, zod) only sees bounded depth.
 */
export function toPlainData(value: Json): Json {
  const root = shellOf(value, []);
  if (!root) return leaf(value);
  const stack: { source: object; target: Container; keys: string[] }[] = [{ source: value as object, target: root, keys: [] }];
  for (let task = stack.pop(); task; task = stack.pop()) {
    const entries = entriesOf(task.source, task.keys);
    if (entries.length > 0 && task.keys.length >= MAX_OVERRIDE_DEPTH) {
      throw fail(task.keys, `nested more than ${MAX_OVERRIDE_DEPTH} levels deep`);
    }
    for (const [key, child] of entries) {
      const keys = [...task.keys, key];
      const shell = shellOf(child, keys);
      const copy = shell ?? leaf(child);
      if (Array.isArray(task.target)) task.target.push(copy);
      else setOwn(task.target, key, copy);
      if (shell) stack.push({ source: child as object, target: shell, keys });
    }
  }
  return root;
}

/** The merge proper, on data already checked by toPlainData (so its recursion is bounded). */
function mergeData(base: Json, override: Json): Json {
  if (!isPlainObject(base) || !isPlainObject(override)) return override === undefined ? base : override;
  const out: Record<string, Json> = {};
  for (const [key, value] of Object.entries(base)) setOwn(out, key, value);
  for (const [key, value] of Object.entries(override)) {
    if (value === undefined) continue;
    const current = Object.hasOwn(out, key) ? out[key] : undefined;
    const switchesMethod =
      key === 'method' && isPlainObject(current) && isPlainObject(value) && 'name' in value && value.name !== current.name;
    setOwn(out, key, switchesMethod ? switchedMethod(current, value) : mergeData(current, value));
  }
  return out;
}

/** The attack that makes a method's adversarial points: what methods share. */
const SHARED_METHOD_FIELDS = ['epsilon', 'stepSize', 'steps'] as const;

/** A method's own settings when it is switched to without them: the papers' values (beta as in the ST paper's comparison). */
const METHOD_DEFAULTS: Record<string, Record<string, Json>> = {
  st: { reg: 'symmkl', beta: 6, branches: 'batched' },
  trades: { beta: 6 },
  mart: { beta: 5 },
  collaborative: { beta: 6 },
};

/**
 * Switching method (`--set method.name=trades` on an ST preset) keeps the
 * attack the methods share (epsilon, step size, steps) and takes the new
 * method's own defaults; fields given with the switch win. Natural training
 * takes nothing, AWP needs its inner method spelled out.
 */
function switchedMethod(current: Record<string, Json>, value: Record<string, Json>): Json {
  const name = String(value.name);
  if (name === 'natural' || name === 'awp' || !(name in METHOD_DEFAULTS)) return value;
  const source = isPlainObject(current.inner) ? current.inner : current;
  const shared: Record<string, Json> = {};
  for (const f of SHARED_METHOD_FIELDS) if (Object.hasOwn(source, f)) setOwn(shared, f, source[f]!);
  const out: Record<string, Json> = {};
  for (const part of [METHOD_DEFAULTS[name]!, shared, value]) for (const [k, v] of Object.entries(part)) setOwn(out, k, v);
  return out;
}

/**
 * Deep merge: objects merge key by key, everything else (arrays included) is
 * replaced. A `method` with a different `name` replaces the whole method, so
 * switching methods never drags the old method's own fields along (it keeps
 * the shared attack settings and takes the new method's defaults). Throws
 * ConfigError for an override that toPlainData rejects.
 */
export function mergeConfig(base: Json, override: Json): Json {
  return mergeData(base, toPlainData(override));
}

export interface ResolveOptions {
  /** Preset name; default `mnist-st-quick`. */
  preset?: string;
  /** Overrides applied in order after the preset (a config file, then --set, ...). */
  overrides?: readonly Json[];
}

/** resolveConfig is public: JS callers can pass anything, and a TypeError from `for...of` would not name the option. */
function checkResolveOptions(options: unknown): { preset: string; overrides: readonly Json[] } {
  if (!isPlainObject(options)) throw fail([], `expected resolve options (an object), got ${describeValue(options)}`);
  const { preset = DEFAULT_PRESET, overrides = [] } = options;
  if (typeof preset !== 'string') throw fail(['preset'], `expected a string, got ${describeValue(preset)}`);
  if (!Array.isArray(overrides)) throw fail(['overrides'], `expected an array of config objects, got ${describeValue(overrides)}`);
  return { preset, overrides };
}

/** Validates preset + overrides. Throws ConfigError naming every bad field. */
export function resolveConfig(options: ResolveOptions = {}): RunConfig {
  const { preset: presetName, overrides } = checkResolveOptions(options);
  const preset = findPreset(presetName);
  if (!preset) {
    throw new ConfigError([
      {
        path: 'preset',
        message: `unknown preset "${presetName}"${didYouMean(presetName, presets.map((p) => p.name))}; \`st-native presets\` lists all ${presets.length}`,
      },
    ]);
  }
  let merged: Json = mergeConfig(baseConfig, preset.overrides);
  for (const o of overrides) {
    const data = toPlainData(o);
    if (!isPlainObject(data)) throw fail([], `expected a config object, got ${describeValue(data)}`);
    merged = mergeData(merged, data);
  }
  const parsed = runConfigSchema.safeParse(merged);
  if (!parsed.success) throw fromZodError(parsed.error, merged);
  return parsed.data;
}

/**
 * Parses `a.b.c=value` into `{a:{b:{c:value}}}`; value is JSON if it parses,
 * else a string. The result passes the same checks as any override, so a
 * reserved or too deep key fails here with the same message as in a file.
 */
export function parseSetArgument(arg: string): Record<string, Json> {
  const eq = arg.indexOf('=');
  if (eq <= 0) throw new ConfigError([{ path: '--set', message: `expected key.path=value, got "${arg}"` }]);
  const keys = arg.slice(0, eq).split('.');
  if (keys.some((k) => k.length === 0)) throw new ConfigError([{ path: '--set', message: `empty key in "${arg}"` }]);
  const raw = arg.slice(eq + 1);
  let value: Json;
  try {
    value = JSON.parse(raw);
  } catch {
    value = raw;
  }
  const nested = keys.reduceRight<Json>((acc, key) => {
    const o: Record<string, Json> = {};
    setOwn(o, key, acc);
    return o;
  }, value);
  return toPlainData(nested) as Record<string, Json>;
}

/** `resume`: a run's resume file to continue from (`--resume`), else null. */
export function toNativeConfig(cfg: RunConfig, numClasses: number, outDir: string, resume: string | null = null): NativeTrainConfig {
  return {
    model: cfg.model,
    numClasses,
    method: cfg.method,
    epochs: cfg.epochs,
    batchSize: cfg.batchSize,
    optimizer: cfg.optimizer,
    augment: cfg.augment,
    eval: cfg.eval,
    seed: cfg.seed,
    device: cfg.device,
    threads: cfg.threads,
    outDir: path.resolve(outDir),
    initCheckpoint: cfg.initCheckpoint === null ? null : path.resolve(cfg.initCheckpoint),
    evalSchedule: cfg.evalSchedule,
    resume: resume === null ? null : path.resolve(resume),
    precision: cfg.precision,
    memoryFormat: cfg.memoryFormat,
    ema: cfg.ema,
    extra: cfg.dataset.extra ? { file: extraFilePath(cfg.dataset)!, fraction: cfg.dataset.extra.fraction } : null,
  };
}
