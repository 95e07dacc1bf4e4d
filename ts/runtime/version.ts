/**
 * `st-native --version`: the package version, and where it was built from
 * (the git commit, when it runs from a clone), libtorch and Node.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package root: this file is dist/ts/runtime/version.js. */
const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(path.join(packageRoot, 'package.json'), 'utf8')) as { version?: string };
  return pkg.version ?? 'unknown';
}

/** The clone's commit (with `-dirty` for uncommitted changes), or null outside a clone. */
let commitCache: { value: string | null } | null = null;

export function gitCommit(): string | null {
  commitCache ??= { value: readGitCommit() };
  return commitCache.value;
}

function readGitCommit(): string | null {
  if (!existsSync(path.join(packageRoot, '.git'))) return null;
  try {
    const opts = { cwd: packageRoot, encoding: 'utf8' as const, stdio: ['ignore', 'pipe', 'ignore'] as ['ignore', 'pipe', 'ignore'], timeout: 5000 };
    const commit = execFileSync('git', ['rev-parse', '--short=12', 'HEAD'], opts).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], opts).trim() !== '';
    return `${commit}${dirty ? '-dirty' : ''}`;
  } catch {
    return null;
  }
}

/** One line: `st-native 0.1.0 (git abc123, node v20.20.2)`. */
export function versionLine(libtorch: string | null): string {
  const commit = gitCommit();
  const parts = [commit ? `git ${commit}` : null, libtorch ? `libtorch ${libtorch}` : null, `node ${process.version}`].filter((p) => p !== null);
  return `st-native ${packageVersion()} (${parts.join(', ')})`;
}
