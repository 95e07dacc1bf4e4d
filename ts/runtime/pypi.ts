/**
 * The Python package index's JSON API (https://docs.pypi.org/api/json/):
 * which files a release has, their URLs and sha256, and what the release
 * requires. `ST_NATIVE_PYPI_URL` points it at a mirror (or a test server)
 * that serves the same API: `<base>/<name>/<version>/json` and
 * `<base>/<name>/json`.
 */
import { SetupError } from './cache.js';
import { compareVersions, isFinalRelease, matchesPin, normalizeName } from './requirements.js';

export const DEFAULT_PYPI_URL = 'https://pypi.org/pypi';

/** `$ST_NATIVE_PYPI_URL` (without a trailing slash), else PyPI's. */
export function pypiBaseUrl(env: NodeJS.ProcessEnv = process.env): string {
  return (env.ST_NATIVE_PYPI_URL || DEFAULT_PYPI_URL).replace(/\/+$/, '');
}

/** One file of a release, as the JSON API lists it. */
export interface DistFile {
  filename: string;
  /** Absolute (resolved against the JSON's own URL: mirrors give relative ones). */
  url: string;
  sha256: string;
  size: number;
  yanked: boolean;
  /** PEP 658: the METADATA file is served at `<url>.metadata`; its sha256 when the index gives one. */
  metadata: { sha256: string | null } | null;
}

export interface Release {
  /** Normalised project name. */
  name: string;
  version: string;
  files: DistFile[];
  /** `Requires-Dist` lines; null when the index did not say for this version (read the wheel's METADATA then). */
  requiresDist: string[] | null;
  /** The JSON document it came from, for messages. */
  source: string;
}

interface JsonFile {
  filename?: unknown;
  url?: unknown;
  digests?: { sha256?: unknown };
  size?: unknown;
  yanked?: unknown;
  packagetype?: unknown;
  'core-metadata'?: unknown;
  data_dist_info_metadata?: unknown;
}

interface JsonDoc {
  info?: { name?: unknown; version?: unknown; requires_dist?: unknown };
  urls?: unknown;
  releases?: Record<string, unknown>;
}

export interface IndexOptions {
  base: string;
  signal?: AbortSignal;
  /** Milliseconds one JSON request may take (default 60 s). */
  timeoutMs?: number;
}

/** A reused keep-alive connection the server had just closed, and the like: worth one more try. */
const RETRYABLE = ['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET'];

/** Fetches a JSON document: null on 404, a SetupError naming the URL on anything else that is not JSON. */
async function getJson(url: string, options: IndexOptions): Promise<JsonDoc | null> {
  let res: Response | null = null;
  for (let attempt = 0; !res; attempt++) {
    const signal = AbortSignal.any([AbortSignal.timeout(options.timeoutMs ?? 60_000), ...(options.signal ? [options.signal] : [])]);
    try {
      res = await fetch(url, { headers: { accept: 'application/json' }, signal, redirect: 'follow' });
    } catch (e) {
      if (options.signal?.aborted) throw options.signal.reason ?? e;
      const err = e as Error & { cause?: { code?: string; message?: string } };
      if (attempt < 2 && RETRYABLE.includes(err.cause?.code ?? '')) continue;
      throw new SetupError(`cannot reach ${url}: ${err.cause?.message ?? err.cause?.code ?? err.message}`);
    }
  }
  if (res.status === 404) {
    await res.body?.cancel();
    return null;
  }
  if (!res.ok) {
    await res.body?.cancel();
    throw new SetupError(`${url} answered HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`);
  }
  try {
    return (await res.json()) as JsonDoc;
  } catch (e) {
    if (options.signal?.aborted) throw options.signal.reason ?? e;
    throw new SetupError(`${url} did not answer with JSON (${(e as Error).message}); is ST_NATIVE_PYPI_URL an index's JSON API (like ${DEFAULT_PYPI_URL})?`);
  }
}

function distFiles(list: unknown, docUrl: string): DistFile[] {
  if (!Array.isArray(list)) return [];
  const files: DistFile[] = [];
  for (const f of list as JsonFile[]) {
    if (typeof f.filename !== 'string' || typeof f.url !== 'string' || typeof f.digests?.sha256 !== 'string') continue;
    if (f.packagetype !== undefined && f.packagetype !== 'bdist_wheel') continue;
    const meta = f['core-metadata'] ?? f.data_dist_info_metadata;
    const metaSha = meta && typeof meta === 'object' ? (meta as { sha256?: unknown }).sha256 : null;
    files.push({
      filename: f.filename,
      url: new URL(f.url, docUrl).href,
      sha256: f.digests.sha256.toLowerCase(),
      size: typeof f.size === 'number' ? f.size : 0,
      yanked: f.yanked === true,
      metadata: meta ? { sha256: typeof metaSha === 'string' ? metaSha.toLowerCase() : null } : null,
    });
  }
  return files;
}

function requiresOf(doc: JsonDoc): string[] {
  const r = doc.info?.requires_dist;
  // The API gives null for a release that requires nothing.
  return Array.isArray(r) ? r.filter((x): x is string => typeof x === 'string') : [];
}

/**
 * The release `name` `version` (exact), or with `prefix` the highest final
 * release matching `version.*`. Asks `<base>/<name>/<version>/json` first;
 * where that is absent (some mirrors serve only the project document), takes
 * the files from `<base>/<name>/json`, whose requirements are those of the
 * latest version only.
 */
export async function fetchRelease(name: string, pin: { version: string; prefix: boolean }, options: IndexOptions): Promise<Release> {
  const project = normalizeName(name);
  if (!pin.prefix) {
    const url = `${options.base}/${project}/${pin.version}/json`;
    const doc = await getJson(url, options);
    if (doc) return { name: project, version: pin.version, files: distFiles(doc.urls, url), requiresDist: requiresOf(doc), source: url };
  }
  const url = `${options.base}/${project}/json`;
  const doc = await getJson(url, options);
  const spec = `${project}==${pin.version}${pin.prefix ? '.*' : ''}`;
  if (!doc) throw new SetupError(`the package index has no ${project}: ${url} answered 404`);
  const releases = doc.releases ?? {};
  const candidates = Object.keys(releases)
    .filter((v) => matchesPin(v, pin) && (!pin.prefix || isFinalRelease(v)))
    .filter((v) => distFiles(releases[v], url).some((f) => !f.yanked))
    .sort(compareVersions);
  const version = candidates.at(-1);
  if (!version) throw new SetupError(`the package index has no release of ${spec} (${url} lists ${Object.keys(releases).length} versions, none matching)`);
  const files = distFiles(releases[version], url);
  if (doc.info?.version === version) return { name: project, version, files, requiresDist: requiresOf(doc), source: url };
  if (pin.prefix) {
    const exact = `${options.base}/${project}/${version}/json`;
    const vdoc = await getJson(exact, options);
    if (vdoc) return { name: project, version, files: distFiles(vdoc.urls, exact), requiresDist: requiresOf(vdoc), source: exact };
  }
  return { name: project, version, files, requiresDist: null, source: url };
}

/** The host as wheels' platform tags describe it. */
export interface WheelPlatform {
  /** `x86_64` or `aarch64` (PEP 508's platform_machine). */
  machine: string;
  /** The host's glibc, e.g. [2, 35]; null when unknown (then any manylinux tag is taken). */
  glibc: [number, number] | null;
}

/** This process's machine and glibc; null off Linux/glibc or on an architecture PyTorch has no wheels for. */
export function hostPlatform(): WheelPlatform | null {
  const machine = ({ x64: 'x86_64', arm64: 'aarch64' } as Record<string, string>)[process.arch];
  if (process.platform !== 'linux' || !machine) return null;
  const glibc = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header?.glibcVersionRuntime;
  if (!glibc) return null;
  const [major, minor] = glibc.split('.').map(Number);
  return { machine, glibc: Number.isInteger(major) && Number.isInteger(minor) ? [major!, minor!] : null };
}

/** The glibc a platform tag needs, or null when the tag is not a Linux one for `machine`; `any` needs none. */
function tagGlibc(tag: string, machine: string): [number, number] | null | 'any' {
  if (tag === 'any') return 'any';
  const legacy: Record<string, [number, number]> = { manylinux1: [2, 5], manylinux2010: [2, 12], manylinux2014: [2, 17] };
  const m = /^manylinux_(\d+)_(\d+)_(.+)$/.exec(tag);
  if (m) return m[3] === machine ? [Number(m[1]), Number(m[2])] : null;
  const l = /^(manylinux1|manylinux2010|manylinux2014)_(.+)$/.exec(tag);
  return l && l[2] === machine ? legacy[l[1]!]! : null;
}

export interface PickedWheel {
  file: DistFile;
  /** The CPython version its tags name ("3.14"), or null for a `py3` wheel. */
  python: string | null;
}

/**
 * The wheel of `files` for Linux on `platform`: a manylinux (or `any`)
 * wheel whose glibc the host has. The libraries st-native takes from it are
 * the same in every CPython build, so among CPython-specific wheels the
 * newest regular (not free-threaded) one is taken, for a stable choice.
 */
export function pickWheel(files: DistFile[], platform: WheelPlatform): PickedWheel | null {
  let best: { wheel: PickedWheel; rank: number[] } | null = null;
  for (const file of files) {
    if (file.yanked) continue;
    const m = /^(.+?)-(.+?)(?:-\d[^-]*)?-([^-]+)-([^-]+)-([^-]+)\.whl$/.exec(file.filename);
    if (!m) continue;
    const [, , , pyTags, abi, platTags] = m;
    let fits = false;
    let glibcNeed = 0;
    for (const tag of platTags!.split('.')) {
      const need = tagGlibc(tag, platform.machine);
      if (need === null) continue;
      if (need === 'any') fits = true;
      else if (!platform.glibc || need[0] < platform.glibc[0] || (need[0] === platform.glibc[0] && need[1] <= platform.glibc[1])) {
        fits = true;
        glibcNeed = Math.max(glibcNeed, need[0] * 1000 + need[1]);
      }
    }
    if (!fits) continue;
    // A free-threaded build (abi cp313t) is skipped when a regular one exists: ranked last.
    const freeThreaded = /^cp\d+t$/.test(abi!);
    const cp = /cp3(\d+)/.exec(pyTags!);
    const python = cp ? `3.${cp[1]}` : null;
    const rank = [freeThreaded ? 0 : 1, cp ? Number(cp[1]) : 0, glibcNeed];
    if (!best || greater(rank, best.rank)) best = { wheel: { file, python }, rank };
  }
  return best?.wheel ?? null;
}

/** Lexicographic `a > b`. */
function greater(a: number[], b: number[]): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! > b[i]!;
  return false;
}

/** The platforms `files` has wheels for, for a message when none fits. */
export function wheelPlatforms(files: DistFile[]): string[] {
  return [...new Set(files.map((f) => /-([^-]+)\.whl$/.exec(f.filename)?.[1]).filter((p): p is string => Boolean(p)))].sort();
}
