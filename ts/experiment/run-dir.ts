/**
 * A run folder: config.json, metrics.jsonl, summary.json, checkpoints/.
 */
import { createWriteStream, existsSync, mkdirSync, readdirSync, statSync, type WriteStream } from 'node:fs';
import path from 'node:path';
import type { RunConfig } from '../config/schema.js';
import type { NativeTrainConfig, TrainEvent, TrainSummary } from '../native-types.js';
import { removeStaleTempFiles, writeJsonAtomic } from './files.js';
import type { Provenance } from './provenance.js';

/**
 * A folder given as a run folder (eval, train --resume, the API's runDir)
 * that is not one: no config.json of st-native in it. A usage mistake, not
 * a bad config (the CLI exits 2).
 */
export class NotARunFolderError extends Error {
  readonly code = 'ERR_NOT_A_RUN_FOLDER';
  readonly folder: string;
  constructor(folder: string, reason: string) {
    super(`${folder} is not a run folder of st-native: ${reason} (a run folder is what \`st-native train\` makes under its runs folder, with config.json, summary.json and checkpoints/)`);
    this.name = 'NotARunFolderError';
    this.folder = folder;
  }
}

/** Why `dir` is no run folder, for a NotARunFolderError (its config.json is known to be missing). */
export function notARunFolderReason(dir: string): string {
  if (!existsSync(dir)) return 'it does not exist';
  if (!statSync(dir).isDirectory()) return 'it is a file, not a folder';
  return 'it has no config.json';
}

export interface RunDir {
  path: string;
  checkpoints: string;
}

function timestamp(d = new Date()): string {
  return d.toISOString().replace(/[:]/g, '-').replace(/\..*$/, '');
}

const MAX_SUFFIX = 10_000;

/**
 * Creates a fresh run folder, never reusing one: the folder itself is made
 * with an exclusive mkdir (EEXIST means another run, maybe in another
 * process at this very moment, has it), so two runs started with the same
 * name get `name` and `name-2`, never one folder between them.
 */
export function createRunDir(runsDir: string, name: string | null, method: string): RunDir {
  const base = name ?? `${timestamp()}-${method}`;
  if (base === '.' || base === '..' || base.includes('/') || base.includes(path.sep)) {
    throw new Error(`run name "${base}" would escape the runs folder`);
  }
  mkdirSync(runsDir, { recursive: true });
  for (let i = 1; i <= MAX_SUFFIX; i++) {
    const dir = path.resolve(runsDir, i === 1 ? base : `${base}-${i}`);
    try {
      mkdirSync(dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') continue;
      throw e;
    }
    mkdirSync(path.join(dir, 'checkpoints'));
    return { path: dir, checkpoints: path.join(dir, 'checkpoints') };
  }
  throw new Error(`${path.resolve(runsDir, base)}: ${MAX_SUFFIX} runs of that name exist already`);
}

/**
 * Removes temp files that killed runs left in the runs folder (see
 * removeStaleTempFiles): at the latest, the next run cleans up.
 */
export function sweepRunsFolder(runsDir: string): string[] {
  let entries: string[];
  try {
    entries = readdirSync(runsDir);
  } catch {
    return [];
  }
  return entries.flatMap((name) => {
    const dir = path.join(runsDir, name);
    return [...removeStaleTempFiles(dir), ...removeStaleTempFiles(path.join(dir, 'checkpoints'))];
  });
}

/** config.json: the validated config, what the core received, and where the run came from. */
export function writeConfig(run: RunDir, config: RunConfig, native: NativeTrainConfig, origin: Provenance): void {
  writeJsonAtomic(path.join(run.path, 'config.json'), { config, native, provenance: origin });
}

/**
 * summary.json, with checkpoint paths relative to the run folder: a folder
 * copied or moved elsewhere still points at its own checkpoints.
 */
export function writeSummary(run: RunDir, summary: TrainSummary | { status: 'failed'; error: string; code?: string }): void {
  const rel = (p: string | null) => (p === null ? null : path.relative(run.path, path.resolve(p)));
  const stored = 'lastCheckpoint' in summary ? { ...summary, lastCheckpoint: rel(summary.lastCheckpoint), bestCheckpoint: rel(summary.bestCheckpoint) } : summary;
  writeJsonAtomic(path.join(run.path, 'summary.json'), stored);
}

/**
 * Appends one JSON event per line to metrics.jsonl, as events arrive. A write
 * failure (disk full, folder removed) must not crash the process from a
 * stream 'error' event mid-training: it is kept and reported by `close()`.
 */
export class MetricsLog {
  readonly file: string;
  private readonly stream: WriteStream;
  private error: Error | undefined;
  constructor(run: RunDir) {
    this.file = path.join(run.path, 'metrics.jsonl');
    this.stream = createWriteStream(this.file, { flags: 'a' });
    this.stream.on('error', (e) => {
      this.error ??= e;
    });
  }
  append(event: TrainEvent): void {
    if (this.error) return;
    this.stream.write(`${JSON.stringify({ time: new Date().toISOString(), ...event })}\n`);
  }
  /** Flushes and closes; rejects if any line could not be written. */
  close(): Promise<void> {
    return new Promise((resolve, reject) => {
      const settle = (err?: Error | null) => {
        const e = this.error ?? err;
        if (e) reject(new Error(`${this.file}: could not be written (${e.message})`));
        else resolve();
      };
      if (this.stream.destroyed) return settle();
      this.stream.end(settle);
    });
  }
}
