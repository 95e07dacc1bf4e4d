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

/** Appends one JSON event per line to metrics.jsonl. */
export class MetricsLog {
  private readonly stream: WriteStream;
  constructor(run: RunDir) {
    this.stream = createWriteStream(path.join(run.path, 'metrics.jsonl'), { flags: 'a' });
  }
  append(event: TrainEvent): void {
    this.stream.write(`${JSON.stringify({ time: new Date().toISOString(), ...event })}\n`);
  }
  close(): Promise<void> {
    return new Promise((resolve, reject) => this.stream.end((err?: Error | null) => (err ? reject(err) : resolve())));
  }
}
