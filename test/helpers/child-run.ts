/**
 * A training run in a child process, driven like a user or a scheduler
 * would: wait for a moment in the run, send a signal, close its stdout, kill
 * it. Used by the fault suite.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { root } from './cli.js';

/**
 * A small but long run: 256 digits, 8 ST steps an epoch, a checkpoint at the
 * end of every (short) epoch, far more epochs than a test waits for.
 */
export function longRunArgs(runsDir: string, name: string): string[] {
  return [
    'train', '--json', '--device', 'cpu', '--runs-dir', runsDir, '--name', name, '--epochs', '10000',
    '--set', 'dataset.trainSize=256', '--set', 'dataset.testSize=16', '--set', 'batchSize=32',
    '--set', 'method.steps=2', '--set', 'eval.steps=1', '--set', 'threads=1',
  ];
}

export interface Child {
  proc: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** Resolves when a line of `stream` (default stdout) satisfies `pred` (rejects if the child exits first). */
  waitForLine: (pred: (line: string) => boolean, timeoutMs?: number, stream?: 'stdout' | 'stderr') => Promise<string>;
  /** Exit code and signal. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function spawnNode(args: string[], env: NodeJS.ProcessEnv = {}): Child {
  const proc = spawn(process.execPath, args, {
    cwd: root,
    env: { ...process.env, CI: 'true', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  type Stream = 'stdout' | 'stderr';
  const waiters: { pred: (l: string) => boolean; resolve: (l: string) => void; stream: Stream }[] = [];
  const pending: Record<Stream, string> = { stdout: '', stderr: '' };
  const lines = (stream: Stream, chunk: string) => {
    pending[stream] += chunk;
    let nl: number;
    while ((nl = pending[stream].indexOf('\n')) >= 0) {
      const line = pending[stream].slice(0, nl);
      pending[stream] = pending[stream].slice(nl + 1);
      for (const w of [...waiters]) {
        if (w.stream === stream && w.pred(line)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(line);
        }
      }
    }
  };
  proc.stdout!.setEncoding('utf8');
  proc.stderr!.setEncoding('utf8');
  proc.stdout!.on('data', (chunk: string) => {
    out += chunk;
    lines('stdout', chunk);
  });
  // A destroyed stdout (the closed-pipe test) must not throw here.
  proc.stdout!.on('error', () => undefined);
  proc.stderr!.on('data', (chunk: string) => {
    err += chunk;
    lines('stderr', chunk);
  });
  // A hung child fails its test after two minutes instead of holding the suite.
  const guard = setTimeout(() => {
    err += '\n[test harness: killed after 120 s]';
    proc.kill('SIGKILL');
  }, 120_000);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.on('exit', (code, signal) => {
      clearTimeout(guard);
      resolve({ code, signal });
    }),
  );
  const waitForLine = (pred: (line: string) => boolean, timeoutMs = 60_000, stream: Stream = 'stdout') =>
    new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no such line within ${timeoutMs} ms; stderr: ${err}`)), timeoutMs);
      waiters.push({
        stream,
        pred,
        resolve: (l) => {
          clearTimeout(timer);
          resolve(l);
        },
      });
      void exited.then(() => {
        clearTimeout(timer);
        reject(new Error(`exited before the line; stderr: ${err}`));
      });
    });
  return { proc, stdout: () => out, stderr: () => err, waitForLine, exited };
}

export function spawnCli(args: string[], env: NodeJS.ProcessEnv = {}): Child {
  return spawnNode([path.join(root, 'bin', 'st-native.js'), ...args], env);
}

export const isEvent = (type: string) => (line: string) => line.startsWith(`{"type":"${type}"`);

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A small deterministic PRNG (mulberry32), so a failing moment can be replayed from the logged seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Every file under `dir`, recursively. */
export function filesUnder(dir: string): string[] {
  let out: string[] = [];
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return out;
  }
  for (const name of entries) {
    const p = path.join(dir, name);
    out = statSync(p).isDirectory() ? [...out, ...filesUnder(p)] : [...out, p];
  }
  return out;
}

/** What a crash looks like on stderr: none of it may appear. */
export const CRASH_SIGNS = /Segmentation fault|panicked|libc\+\+abi|terminate called|Exception raised from|EPIPE|Aborted|core dumped|FATAL ERROR/;
