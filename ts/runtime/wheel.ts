/**
 * libtorch from PyTorch's wheels without Python: resolves torch 2.11.0 and
 * the NVIDIA library wheels it pins (through the index's JSON API and the
 * wheels' own `Requires-Dist`), downloads each into `<cache>/downloads`
 * (sha256-checked, resumable), and extracts only the shared libraries
 * st-native loads into an install folder laid out as pip's `--target` would
 * (torch/lib next to nvidia/<lib>/lib: the wheels' RPATH expects that).
 *
 * PyPI carries one Linux torch build, with CUDA; its CPU-only builds
 * (`+cpu`) live on download.pytorch.org. `--cpu` therefore takes the PyPI
 * wheel without its CUDA libraries: libtorch_cpu.so runs on CPU and needs
 * only libcudart and libcupti from CUDA (what `cuda-toolkit[cudart,cupti]`
 * resolves to).
 */
import { createHash } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import path from 'node:path';
import { ChecksumError, DownloadError, downloadChecked, hashFile, type DownloadTuning } from '../data/download.js';
import { DatasetError } from '../data/errors.js';
import { megabytes, type ProgressOutput } from '../data/progress.js';
import { LIBTORCH_VERSION, SetupError, type Flavor } from './cache.js';
import { fetchRelease, pickWheel, wheelPlatforms, type DistFile, type IndexOptions, type Release, type WheelPlatform } from './pypi.js';
import { exactPin, linuxMarkerEnv, matchesPin, normalizeName, parseRequirement, requirementApplies, type MarkerEnv, type Requirement } from './requirements.js';
import { ZipReader, type ZipEntry } from './zip.js';

/** In the torch wheel but useless without the CUDA libraries: left out of `cpu` installs (about 0.5 GB). */
export const CUDA_ONLY_LIBRARIES = ['libtorch_cuda.so', 'libtorch_cuda_linalg.so', 'libc10_cuda.so', 'libtorch_nvshmem.so', 'libcaffe2_nvrtc.so'];

/** In torch/lib but never loaded by st-native: it needs libpython. */
const PYTHON_ONLY_LIBRARIES = ['libtorch_python.so'];

/** cuda-toolkit's extras `--cpu` takes: libtorch_cpu.so NEEDS libcudart.so.13 and libcupti.so.13. */
export const CPU_CUDA_EXTRAS = ['cudart', 'cupti'];

/**
 * The requirements followed: the NVIDIA library wheels and cuda-toolkit,
 * the meta-package whose extras pin them. torch's other pins (triton,
 * cuda-bindings, sympy, ...) are Python packages st-native loads nothing from.
 */
export const followed = (name: string) => name === 'cuda-toolkit' || name.startsWith('nvidia-');

/** One wheel to fetch. */
export interface WheelSpec {
  /** Normalised project name. */
  name: string;
  version: string;
  file: DistFile;
  /** Extras asked for (cuda-toolkit's select the NVIDIA libraries). */
  extras: string[];
  /** `torch` -> `cuda-toolkit[cudart]==13.0.2`: who asked for it, for messages. */
  requiredBy: string | null;
  release: Release;
}

export interface WheelSetupOptions {
  flavor: Flavor;
  index: IndexOptions;
  platform: WheelPlatform;
  /** Where wheels are downloaded to (and `.part` files resumed from). */
  downloads: string;
  progress: ProgressOutput | null;
  signal?: AbortSignal;
  tuning?: Partial<DownloadTuning>;
  /** Wheel files already checked in this run (a wheel read for its requirements is not hashed twice). */
  verified?: Set<string>;
}

/**
 * Whether an entry of a wheel is one st-native installs: torch's shared
 * libraries (less the CUDA ones for `cpu`, less libtorch_python), the NVIDIA
 * wheels' `nvidia/<lib>/lib/*.so*`, libraries auditwheel vendored into
 * `<dist>.libs/`, and `torch/version.py` (how the runtime reads the version).
 */
export function wantedEntry(name: string, flavor: Flavor): boolean {
  if (name === 'torch/version.py') return true;
  const torchLib = /^torch\/lib\/([^/]+\.so(?:\.[0-9]+)*)$/.exec(name);
  if (torchLib) {
    const lib = torchLib[1]!;
    return !PYTHON_ONLY_LIBRARIES.includes(lib) && !(flavor === 'cpu' && CUDA_ONLY_LIBRARIES.includes(lib));
  }
  return /^nvidia\/[^/]+\/lib\/[^/]+\.so(?:\.[0-9]+)*$/.test(name) || /^[^/]+\.libs\/[^/]+\.so(?:\.[0-9]+)*$/.test(name);
}

/** The `Requires-Dist` lines of a METADATA file (its headers end at the first blank line). */
export function requiresFromMetadata(text: string): string[] {
  const headers = text.split(/\r?\n\r?\n/, 1)[0]!.replace(/\r?\n[ \t]+/g, ' ');
  return headers
    .split(/\r?\n/)
    .filter((l) => /^Requires-Dist:/i.test(l))
    .map((l) => l.replace(/^Requires-Dist:\s*/i, '').trim());
}

const spec = (name: string, req: Requirement) => `${name}${req.extras.length ? `[${req.extras.join(',')}]` : ''}${req.specifier}`;

class Resolver {
  readonly selected = new Map<string, WheelSpec>();
  /** Requirements of NVIDIA packages without an exact pin (cuDNN's on cuBLAS): checked against what was selected. */
  private readonly loose: { by: string; line: string; name: string }[] = [];
  private env: MarkerEnv | null = null;

  constructor(
    private readonly options: WheelSetupOptions,
    /** Reads a wheel's requirements when the index does not state them. */
    private readonly requiresOf: (w: WheelSpec) => Promise<string[]>,
  ) {}

  private async select(name: string, pin: { version: string; prefix: boolean }, extras: string[], requiredBy: string | null): Promise<WheelSpec> {
    const release = await fetchRelease(name, pin, this.options.index);
    const picked = pickWheel(release.files, this.options.platform);
    if (!picked) {
      const glibc = this.options.platform.glibc ? ` with glibc ${this.options.platform.glibc.join('.')}` : '';
      throw new SetupError(
        `${release.name} ${release.version} has no wheel for Linux ${this.options.platform.machine}${glibc} (${release.source} lists: ${wheelPlatforms(release.files).join(', ') || 'no wheels'})`,
      );
    }
    this.env ??= linuxMarkerEnv(this.options.platform.machine, picked.python ?? '3.12');
    const w: WheelSpec = { name: release.name, version: release.version, file: picked.file, extras, requiredBy, release };
    this.selected.set(w.name, w);
    return w;
  }

  async resolve(): Promise<WheelSpec[]> {
    const queue = [await this.select('torch', { version: LIBTORCH_VERSION, prefix: false }, [], null)];
    while (queue.length) {
      const w = queue.shift()!;
      for (const line of await this.requiresOf(w)) {
        const req = parseRequirement(line);
        if (!requirementApplies(req, this.env!, w.extras)) continue;
        const name = normalizeName(req.name);
        let extras = req.extras.map(normalizeName);
        if (this.options.flavor === 'cpu' && w.name === 'torch') {
          if (name !== 'cuda-toolkit') continue;
          extras = extras.filter((e) => CPU_CUDA_EXTRAS.includes(e));
          if (!extras.length) continue;
        }
        if (!followed(name)) continue;
        const pin = exactPin(req.specifier);
        if (!pin) {
          this.loose.push({ by: `${w.name} ${w.version}`, line, name });
          continue;
        }
        const have = this.selected.get(name);
        if (have) {
          if (!matchesPin(have.version, pin)) throw new SetupError(`${w.name} ${w.version} requires ${spec(name, req)}, but ${have.requiredBy} asked for ${name} ${have.version}`);
          const more = extras.filter((e) => !have.extras.includes(e));
          if (more.length) {
            have.extras.push(...more);
            queue.push(have);
          }
          continue;
        }
        queue.push(await this.select(name, pin, extras, `${w.name} ${w.version}`));
      }
    }
    for (const l of this.loose) {
      if (!this.selected.has(l.name)) throw new SetupError(`${l.by} requires ${l.line}, which none of torch ${LIBTORCH_VERSION}'s pins provides`);
    }
    return [...this.selected.values()];
  }
}

/** Where a wheel is downloaded to. */
export const wheelPath = (downloads: string, w: WheelSpec) => path.join(downloads, w.file.filename);

const networkHint = 'or run `st-native setup --pip`, which installs with Python\'s pip and its configuration (proxies, mirrors)';

/**
 * Downloads `w` unless a complete copy is there (its sha256 is checked
 * either way); resolves with its path. Failures become SetupErrors that say
 * what happened to the download.
 */
export async function fetchWheel(w: WheelSpec, options: WheelSetupOptions): Promise<string> {
  const dest = wheelPath(options.downloads, w);
  if (options.verified?.has(dest) && existsSync(dest)) return dest;
  if (existsSync(dest)) {
    if ((await hashFile(dest, 'sha256')) === w.file.sha256) {
      options.verified?.add(dest);
      return dest;
    }
    options.progress?.line(`${w.file.filename}: the copy in ${options.downloads} does not match its sha256; downloading it again`);
    rmSync(dest, { force: true });
  }
  const remote = { name: w.file.filename, url: w.file.url, bytes: w.file.size, algorithm: 'sha256' as const, digest: w.file.sha256 };
  try {
    await downloadChecked(remote, dest, { progress: options.progress, ...options.tuning, ...(options.signal ? { signal: options.signal } : {}) });
  } catch (e) {
    if (options.signal?.aborted) throw e;
    if (e instanceof ChecksumError) throw new SetupError(`${e.message}. Nothing was installed.`);
    if (e instanceof DownloadError) {
      throw new SetupError(`downloading ${w.file.filename} failed: ${e.message}. What arrived is kept in ${dest}.part: rerun \`st-native setup\` to resume (${networkHint}).`);
    }
    if (e instanceof DatasetError) throw new SetupError(e.message);
    throw e;
  }
  options.verified?.add(dest);
  return dest;
}

/** The requirements of a release the index gave none for: PEP 658's `.metadata` file, else the wheel's own METADATA. */
async function wheelRequires(w: WheelSpec, options: WheelSetupOptions): Promise<string[]> {
  if (w.release.requiresDist) return w.release.requiresDist;
  if (w.file.metadata) {
    const url = `${w.file.url}.metadata`;
    try {
      const res = await fetch(url, { ...(options.signal ? { signal: options.signal } : {}) });
      if (res.ok) {
        const body = Buffer.from(await res.arrayBuffer());
        const sha = w.file.metadata.sha256;
        if (!sha || createHash('sha256').update(body).digest('hex') === sha) return requiresFromMetadata(body.toString('utf8'));
      } else await res.body?.cancel();
    } catch (e) {
      if (options.signal?.aborted) throw e;
      // Fall through to the wheel itself.
    }
  }
  options.progress?.line(`${w.name} ${w.version}: the index does not list its requirements; reading them from the wheel`);
  const file = await fetchWheel(w, options);
  const zip = await ZipReader.open(file);
  try {
    const entry = zip.entries.find((e) => /^[^/]+\.dist-info\/METADATA$/.test(e.name));
    if (!entry) throw new SetupError(`${file} has no *.dist-info/METADATA: not a wheel`);
    return requiresFromMetadata((await zip.read(entry)).toString('utf8'));
  } finally {
    await zip.close();
  }
}

/** Resolves torch 2.11.0's wheels for `options.flavor` (downloading those whose requirements only the wheel states). */
export async function resolveWheels(options: WheelSetupOptions): Promise<WheelSpec[]> {
  return new Resolver(options, (w) => wheelRequires(w, options)).resolve();
}

/** Extracts the wanted entries of one wheel into `target`; resolves with their count and bytes. */
export async function extractWheel(file: string, target: string, flavor: Flavor): Promise<{ files: number; bytes: number }> {
  const zip = await ZipReader.open(file);
  try {
    const wanted: ZipEntry[] = zip.entries.filter((e) => wantedEntry(e.name, flavor));
    let bytes = 0;
    for (const entry of wanted) {
      await zip.extract(entry, path.join(target, ...entry.name.split('/')));
      bytes += entry.size;
    }
    return { files: wanted.length, bytes };
  } finally {
    await zip.close();
  }
}

export interface WheelInstall {
  wheels: WheelSpec[];
  /** Downloaded wheel files, to delete once the install is in place. */
  files: string[];
  /** `name==version` of each wheel. */
  packages: string[];
}

/** Resolves, downloads and extracts libtorch's wheels into `target`. */
export async function installWheels(target: string, opts: WheelSetupOptions): Promise<WheelInstall> {
  const options = { ...opts, verified: opts.verified ?? new Set<string>() };
  const { progress } = options;
  progress?.line(`resolving torch ${LIBTORCH_VERSION} and the CUDA libraries it pins (${options.flavor}) from ${options.index.base}`);
  const wheels = await resolveWheels(options);
  const total = wheels.reduce((s, w) => s + w.file.size, 0);
  progress?.line(`${wheels.length} wheel(s), ${(total / 1e9).toFixed(2)} GB: ${wheels.map((w) => `${w.name} ${w.version}`).join(', ')}`);
  const files: string[] = [];
  let extracted = 0;
  for (const w of wheels) {
    options.signal?.throwIfAborted();
    const file = await fetchWheel(w, options);
    files.push(file);
    const r = await extractWheel(file, target, options.flavor);
    extracted += r.bytes;
    progress?.line(`${w.file.filename}: ${r.files} file(s), ${megabytes(r.bytes)} extracted`);
  }
  progress?.line(`extracted ${(extracted / 1e9).toFixed(2)} GB into ${target}`);
  return { wheels, files, packages: wheels.map((w) => `${w.name}==${w.version}`) };
}
