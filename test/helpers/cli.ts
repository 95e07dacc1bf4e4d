/** Runs the built CLI (bin/st-native.js) as a subprocess, without a TTY. */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package root (this file is compiled to dist/test/helpers/). */
export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

export function cli(...args: string[]): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [path.join(root, 'bin', 'st-native.js'), ...args], {
    encoding: 'utf8',
    env: { ...process.env, CI: 'true' },
  });
}
