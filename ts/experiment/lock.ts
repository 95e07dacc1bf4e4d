/**
 * One writer per seeds group or sweep folder: a second process continuing
 * the same folder at the same time would delete the first one's unfinished
 * run as "interrupted". The lock file names its host and pid; a lock left by
 * a process that is gone (kill -9) is taken over, as stale temp files are.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../config/errors.js';
import { tempHost } from './files.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Takes `<dir>/.lock`; returns the function that releases it. */
export function lockFolder(dir: string): () => void {
  const file = path.join(dir, '.lock');
  const me = `${tempHost()} ${process.pid}`;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      writeFileSync(file, me, { flag: 'wx' });
      return () => rmSync(file, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    let owner = '';
    try {
      owner = readFileSync(file, 'utf8').trim();
    } catch {
      continue; // released between our two calls
    }
    const [host, pidText] = owner.split(' ');
    const pid = Number(pidText);
    if (host === tempHost() && Number.isInteger(pid) && pid !== process.pid && !alive(pid)) {
      rmSync(file, { force: true });
      continue;
    }
    throw new ConfigError([{ path: dir, message: `in use by process ${pidText ?? '?'} on ${host ?? '?'} (${file}); wait for it to finish, or remove the lock file if that process is gone` }]);
  }
  throw new ConfigError([{ path: dir, message: `could not take ${file}` }]);
}
