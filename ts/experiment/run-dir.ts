/**
 * A run folder: config.json, metrics.jsonl, summary.json, checkpoints/.
 */
import { createWriteStream, existsSync, mkdirSync, type WriteStream } from 'node:fs';
import path from 'node:path';
import type { RunConfig } from '../config/schema.js';
import type { NativeTrainConfig, TrainEvent, TrainSummary } from '../native-types.js';
import { writeJsonAtomic } from './files.js';

export interface RunDir {
  path: string;
  checkpoints: string;
}

function timestamp(d = new Date()): string {
  return d.toISOString().replace(/[:]/g, '-').replace(/\..*$/, '');
}

/** Creates a fresh run folder (never reuses an existing one). */
export function createRunDir(runsDir: string, name: string | null, method: string): RunDir {
  const base = name ?? `${timestamp()}-${method}`;
  let dir = path.resolve(runsDir, base);
  for (let i = 2; existsSync(dir); i++) dir = path.resolve(runsDir, `${base}-${i}`);
  mkdirSync(path.join(dir, 'checkpoints'), { recursive: true });
  return { path: dir, checkpoints: path.join(dir, 'checkpoints') };
}

export function writeConfig(run: RunDir, config: RunConfig, native: NativeTrainConfig): void {
  writeJsonAtomic(path.join(run.path, 'config.json'), { config, native });
}

export function writeSummary(run: RunDir, summary: TrainSummary | { status: 'failed'; error: string; code?: string }): void {
  writeJsonAtomic(path.join(run.path, 'summary.json'), summary);
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
