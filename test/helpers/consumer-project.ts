/**
 * A TypeScript project outside the repository that sees st-native as a
 * consumer would: only the published declarations (dist/ts/**\/*.d.ts, the
 * package.json), the runtime dependencies and typescript, and no
 * `@types/node`. Checks the declarations under `lib: ES2022` and strict,
 * without skipLibCheck.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { root } from './cli.js';

export interface TscResult {
  status: number | null;
  /** tsc's diagnostics. */
  output: string;
  /** Every file the program read (from --listFiles). */
  files: string[];
}

/** Creates the project; `check(source)` type-checks one snippet importing "st-native" in it. */
export function consumerProject(): { dir: string; check: (source: string) => TscResult } {
  const dir = mkdtempSync(path.join(tmpdir(), 'st-consumer-'));
  const pkgDir = path.join(dir, 'node_modules', 'st-native');
  mkdirSync(pkgDir, { recursive: true });
  cpSync(path.join(root, 'package.json'), path.join(pkgDir, 'package.json'));
  cpSync(path.join(root, 'dist', 'ts'), path.join(pkgDir, 'dist', 'ts'), {
    recursive: true,
    filter: (src) => !/\.(js|map)$/.test(src),
  });
  const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
  for (const dep of [...Object.keys(pkg.dependencies ?? {}), 'typescript']) {
    const from = path.join(root, 'node_modules', dep);
    const to = path.join(dir, 'node_modules', dep);
    if (!existsSync(from)) continue;
    mkdirSync(path.dirname(to), { recursive: true });
    symlinkSync(from, to);
  }
  writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  const compilerOptions = { target: 'ES2022', lib: ['ES2022'], module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, types: [] };
  writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: ['main.ts'] }, null, 2));
  const check = (source: string): TscResult => {
    writeFileSync(path.join(dir, 'main.ts'), source);
    const r = spawnSync(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', dir, '--listFiles', '--pretty', 'false'], {
      cwd: dir,
      encoding: 'utf8',
    });
    const lines = `${r.stdout}${r.stderr}`.split('\n');
    const files = lines.filter((l) => /\.d\.c?ts$|\.ts$/.test(l.trim()) && !l.includes('): error'));
    const output = lines.filter((l) => !files.includes(l)).join('\n').trim();
    return { status: r.status, output, files };
  };
  return { dir, check };
}
