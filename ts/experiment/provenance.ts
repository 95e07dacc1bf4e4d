/**
 * Where a result came from, recorded in every run folder and evaluation
 * output: st-native's version and commit, libtorch, Node, the host and
 * platform, the time, and the command line (or that it was an API call).
 */
import { hostname } from 'node:os';
import { gitCommit, packageVersion } from '../runtime/version.js';

export interface Provenance {
  stNative: string;
  /** The clone's commit (`-dirty` with uncommitted changes); null for an installed package. */
  gitCommit: string | null;
  libtorch: string | null;
  node: string;
  host: string;
  platform: string;
  /** How libtorch's OpenMP threads wait (`GOMP_SPINCOUNT=20000` unless the user chose). */
  openmpWait: string;
  time: string;
  /** `st-native train ...` as typed (arguments quoted where needed), or null for an API call. */
  command: string | null;
}

let invocation: string | null = null;

/** The CLI records its arguments here, so results say which command made them. */
export function setInvocation(argv: readonly string[]): void {
  const quote = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);
  invocation = ['st-native', ...argv].map(quote).join(' ');
}

export function provenance(libtorch: string | null): Provenance {
  return {
    stNative: packageVersion(),
    gitCommit: gitCommit(),
    libtorch,
    node: process.version,
    host: hostname(),
    platform: `${process.platform}-${process.arch}`,
    openmpWait:
      process.env.GOMP_SPINCOUNT !== undefined
        ? `GOMP_SPINCOUNT=${process.env.GOMP_SPINCOUNT}`
        : process.env.OMP_WAIT_POLICY !== undefined
          ? `OMP_WAIT_POLICY=${process.env.OMP_WAIT_POLICY}`
          : 'libgomp default',
    time: new Date().toISOString(),
    command: invocation,
  };
}
