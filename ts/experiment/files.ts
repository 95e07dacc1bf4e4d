/**
 * Atomic file writes: a temp file in the same folder, then rename, so a
 * reader (or a crash) only ever sees the old or the new file. A failed write
 * removes its temp file (a full disk must not stay full of our leftovers).
 */
import { mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';

/** This host's name as temp file names carry it (the native core writes the same). */
export function tempHost(): string {
  return hostname().replace(/[^A-Za-z0-9._-]/g, '_') || 'localhost';
}

/** `.name.tmp-<host>-<pid>`: hidden, beside the target, and naming its writer. */
export function tempPathFor(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.tmp-${tempHost()}-${process.pid}`);
}

export function writeFileAtomic(file: string, data: string): void {
  mkdirSync(path.dirname(file), { recursive: true });
  const tmp = tempPathFor(file);
  try {
    writeFileSync(tmp, data);
    renameSync(tmp, file);
  } catch (e) {
    try {
      rmSync(tmp, { force: true });
    } catch {
      /* the write's error is the one to report */
    }
    throw e;
  }
}

export function writeJsonAtomic(file: string, value: unknown): void {
  writeFileAtomic(file, `${JSON.stringify(value, null, 2)}\n`);
}

const TEMP_NAME = /^\..+\.tmp-(.+)-(\d+)$/;

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it exists but belongs to someone else.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes the temp files that a killed writer (kill -9, power loss) left in
 * `folder`: those written on this host by a process that is gone. Our own
 * and other live processes' files are writes in progress and stay, and so do
 * other hosts' (a runs folder on a shared disk: their pids mean nothing
 * here). Returns what it removed.
 */
export function removeStaleTempFiles(folder: string): string[] {
  let names: string[];
  try {
    names = readdirSync(folder);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const m = TEMP_NAME.exec(name);
    if (!m) continue;
    if (m[1] !== tempHost()) continue;
    const pid = Number(m[2]);
    if (pid === process.pid || processAlive(pid)) continue;
    const file = path.join(folder, name);
    rmSync(file, { force: true });
    removed.push(file);
  }
  return removed;
}
