/**
 * What a report reads from a run folder besides metrics.jsonl: config.json
 * (the config and its provenance), summary.json, and the evaluation outputs
 * (`eval-*.json` beside the checkpoints folder, earlier ones in
 * eval-history/). Read leniently, checking only what the report shows, so
 * that folders of older versions still report; what cannot be read is an
 * error naming the file.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import type { Provenance } from '../experiment/provenance.js';
import { ReportInputError } from './history.js';

function readJson(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ReportInputError(`${file}: cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ReportInputError(`${file}: not JSON (${(e as Error).message})`);
  }
}

function check<T>(schema: z.ZodType<T>, value: unknown, file: string): T {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  throw new ReportInputError(`${file}: ${issue.path.join('.') || '(document)'}: ${issue.message}`);
}

const provenanceSchema = z.looseObject({
  stNative: z.string(),
  gitCommit: z.string().nullable().optional(),
  libtorch: z.string().nullable().optional(),
  node: z.string().optional(),
  host: z.string().optional(),
  platform: z.string().optional(),
  openmpWait: z.string().optional(),
  time: z.string().optional(),
  command: z.string().nullable().optional(),
});

const configFileSchema = z.looseObject({
  config: z.record(z.string(), z.unknown()),
  provenance: provenanceSchema.optional(),
});

export interface RunConfigFile {
  /** The validated config as the run stored it (`config` of config.json). */
  config: Record<string, unknown>;
  provenance: Partial<Provenance> | null;
}

export function readConfigFile(runDir: string): RunConfigFile {
  const file = path.join(runDir, 'config.json');
  if (!existsSync(file)) throw new ReportInputError(`${file}: not found: is this a run folder?`);
  const doc = check(configFileSchema, readJson(file), file);
  return { config: doc.config, provenance: (doc.provenance as Partial<Provenance> | undefined) ?? null };
}

const resultSchema = z.looseObject({
  epoch: z.number(),
  split: z.string(),
  cleanAcc: z.number(),
  robustAcc: z.number(),
  attack: z.string(),
  samples: z.number(),
});
export type ResultRow = z.infer<typeof resultSchema>;

const summarySchema = z.looseObject({
  status: z.string(),
  epochsCompleted: z.number().optional(),
  best: resultSchema.nullable().optional(),
  last: resultSchema.nullable().optional(),
  test: resultSchema.nullable().optional(),
  seconds: z.number().optional(),
  error: z.string().optional(),
});
export type RunSummary = z.infer<typeof summarySchema>;

/** summary.json, or null while a run is going (or was killed before writing it). */
export function readSummary(runDir: string): RunSummary | null {
  const file = path.join(runDir, 'summary.json');
  if (!existsSync(file)) return null;
  return check(summarySchema, readJson(file), file);
}

const interval = z.tuple([z.number(), z.number()]);
const attackSchema = z.looseObject({
  name: z.string(),
  spec: z.looseObject({ kind: z.string() }),
  accuracy: z.number(),
  correct: z.number(),
  samples: z.number(),
  // Files written before intervals were stored lack it: the report computes it (Wilson, as evaluate.ts does).
  interval95: interval.optional(),
  stages: z.array(z.looseObject({ name: z.string(), attacked: z.number(), correct: z.number(), accuracy: z.number(), seconds: z.number() })).nullable().optional(),
  resumed: z.boolean().optional(),
});
const evaluationSchema = z.looseObject({
  model: z.string(),
  checkpoint: z.string(),
  samples: z.number(),
  seed: z.number(),
  dataset: z.string().optional(),
  epoch: z.number().nullable().optional(),
  device: z.string().optional(),
  attacks: z.array(attackSchema),
  worstCase: z.looseObject({ accuracy: z.number(), correct: z.number(), over: z.array(z.string()), interval95: interval.optional() }),
  run: z.looseObject({ attack: z.string(), epoch: z.number() }).nullable().optional(),
  notices: z.array(z.string()).optional(),
  provenance: provenanceSchema.optional(),
  target: z.looseObject({ kind: z.string(), checkpoint: z.string().optional() }).optional(),
});
export type StoredEvaluation = z.infer<typeof evaluationSchema>;

export interface EvaluationFile {
  /** Relative to the run folder: `eval-best.json`, `eval-history/eval-best-<time>.json`. */
  name: string;
  evaluation: StoredEvaluation;
}

/**
 * Every evaluation kept in the run folder, current ones first, then the
 * history newest first. One that cannot be read is reported in `errors`
 * (the rest of the report still stands).
 */
export function readEvaluations(runDir: string): { files: EvaluationFile[]; errors: string[] } {
  const list = (dir: string) => {
    try {
      return readdirSync(path.join(runDir, dir)).filter((n) => n.endsWith('.json') && !n.startsWith('.'));
    } catch {
      return [];
    }
  };
  const current = list('.').filter((n) => n.startsWith('eval-')).sort();
  const history = list('eval-history').sort().reverse();
  const files: EvaluationFile[] = [];
  const errors: string[] = [];
  for (const name of [...current, ...history.map((n) => path.join('eval-history', n))]) {
    const file = path.join(runDir, name);
    try {
      files.push({ name, evaluation: check(evaluationSchema, readJson(file), file) });
    } catch (e) {
      errors.push((e as Error).message);
    }
  }
  return { files, errors };
}
