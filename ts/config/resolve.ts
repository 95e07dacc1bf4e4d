/**
 * Turns "preset + overrides" into a validated RunConfig, and a RunConfig into
 * what the native core receives.
 */
import path from 'node:path';
import { ConfigError, fromZodError } from './errors.js';
import { baseConfig, DEFAULT_PRESET, findPreset, presets } from './presets.js';
import { runConfigSchema, type RunConfig } from './schema.js';
import type { NativeTrainConfig } from '../native-types.js';

type Json = unknown;

function isPlainObject(v: Json): v is Record<string, Json> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/**
 * Deep merge: objects merge key by key, everything else (arrays included) is
 * replaced. A `method` with a different `name` replaces the whole method, so
 * switching methods never drags the old method's fields along.
 */
export function mergeConfig(base: Json, override: Json): Json {
  if (!isPlainObject(base) || !isPlainObject(override)) return override === undefined ? base : override;
  const out: Record<string, Json> = { ...base };
  for (const [key, value] of Object.entries(override)) {
    if (value === undefined) continue;
    const current = out[key];
    const switchesMethod =
      key === 'method' && isPlainObject(current) && isPlainObject(value) && 'name' in value && value.name !== current.name;
    out[key] = switchesMethod ? value : mergeConfig(current, value);
  }
  return out;
}

export interface ResolveOptions {
  /** Preset name; default `mnist-st-quick`. */
  preset?: string;
  /** Overrides applied in order after the preset (a config file, then --set, ...). */
  overrides?: readonly Json[];
}

/** Validates preset + overrides. Throws ConfigError naming every bad field. */
export function resolveConfig(options: ResolveOptions = {}): RunConfig {
  const presetName = options.preset ?? DEFAULT_PRESET;
  const preset = findPreset(presetName);
  if (!preset) {
    throw new ConfigError([
      { path: 'preset', message: `unknown preset "${presetName}"; expected one of ${presets.map((p) => p.name).join(', ')}` },
    ]);
  }
  let merged: Json = mergeConfig(baseConfig, preset.overrides);
  for (const o of options.overrides ?? []) {
    if (!isPlainObject(o)) throw new ConfigError([{ path: '', message: `expected a config object, got ${JSON.stringify(o)}` }]);
    merged = mergeConfig(merged, o);
  }
  const parsed = runConfigSchema.safeParse(merged);
  if (!parsed.success) throw fromZodError(parsed.error, merged);
  return parsed.data;
}

/** Parses `a.b.c=value` into `{a:{b:{c:value}}}`; value is JSON if it parses, else a string. */
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
  return keys.reduceRight<Json>((acc, key) => ({ [key]: acc }), value) as Record<string, Json>;
}

export function toNativeConfig(cfg: RunConfig, numClasses: number, outDir: string): NativeTrainConfig {
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
  };
}
