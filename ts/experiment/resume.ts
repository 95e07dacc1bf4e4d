/**
 * `train --resume <runDir>`: continue a run from the end of its last
 * completed epoch (checkpoints/resume.safetensors), with the run's own
 * config. Options given beside --resume are applied on top of the run's
 * config and may only change what does not change the numbers: `epochs`
 * (to extend or shorten the run), `device`, `threads`. Anything else that
 * differs is refused, naming each field with both values.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../config/errors.js';
import { mergeConfig } from '../config/resolve.js';
import type { RunConfig } from '../config/schema.js';
import { parseRunConfig, readRunConfigRaw } from './evaluate.js';

/** Fields a resumed run may change. */
const CHANGEABLE = new Set(['epochs', 'device', 'threads', 'runsDir', 'runName']);

export const RESUME_FILE = path.join('checkpoints', 'resume.safetensors');

function flatten(value: unknown, prefix = '', out = new Map<string, string>()): Map<string, string> {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  } else {
    out.set(prefix, JSON.stringify(value));
  }
  return out;
}

/** Dotted fields where `b` differs from `a`, with both values. */
export function configDifferences(a: RunConfig, b: RunConfig): { path: string; run: string; now: string }[] {
  const fa = flatten(a);
  const fb = flatten(b);
  const keys = [...new Set([...fa.keys(), ...fb.keys()])].sort();
  return keys.filter((k) => fa.get(k) !== fb.get(k)).map((k) => ({ path: k, run: fa.get(k) ?? 'nothing', now: fb.get(k) ?? 'nothing' }));
}

export interface ResumePlan {
  runDir: string;
  /** The config to continue with (the run's, with the allowed changes). */
  config: RunConfig;
  resumeFile: string;
}

/**
 * The plan for resuming `runDir` with `overrides` (from the command line)
 * applied on the run's config; a ConfigError names what cannot change.
 */
export function planResume(runDir: string, overrides: readonly unknown[]): ResumePlan {
  // The run's own config, threads included: a resumed run reproduces the
  // uninterrupted one only with the same thread count (reduction order).
  const raw = readRunConfigRaw(runDir);
  const resumeFile = path.resolve(runDir, RESUME_FILE);
  if (!existsSync(resumeFile)) {
    throw new ConfigError([{ path: '--resume', message: `${resumeFile} does not exist: the run has no completed epoch to continue from (start it again instead)` }]);
  }
  let merged: unknown = raw;
  for (const o of overrides) merged = mergeConfig(merged, o);
  // Validated after the options applied: a run from a machine with more
  // cores resumes here with --set threads=N.
  const config = parseRunConfig(runDir, merged);
  const refused = configDifferences(raw as RunConfig, config).filter((d) => !CHANGEABLE.has(d.path.split('.')[0]!));
  if (refused.length > 0) {
    throw new ConfigError(refused.map((d) => ({ path: d.path, message: `differs from the run being resumed (run: ${d.run}, now: ${d.now}); only epochs, device and threads may change` })));
  }
  return { runDir: path.resolve(runDir), config, resumeFile };
}

/**
 * The run's summary when it already trained all `epochs` to completion (a
 * resume would have nothing to do), else null.
 */
export function completedRun(runDir: string, epochs: number): { epochsCompleted: number } | null {
  try {
    const summary = JSON.parse(readFileSync(path.join(runDir, 'summary.json'), 'utf8')) as { status?: string; epochsCompleted?: number };
    if (summary.status === 'completed' && typeof summary.epochsCompleted === 'number' && summary.epochsCompleted >= epochs) return { epochsCompleted: summary.epochsCompleted };
  } catch {
    /* no summary (a killed run): it may well have epochs to go */
  }
  return null;
}
