/**
 * Finds and loads the native addon, libtorch first.
 *
 * The addon (`st-native.<platform>.node`) links libtorch but carries no
 * rpath: the same prebuilt file serves every host, wherever its libtorch is.
 * So, on first use:
 *   1. find a libtorch 2.11.0 (ts/runtime: ST_NATIVE_LIBTORCH / LIBTORCH, a
 *      Python's torch, the project's .venv, the `st-native setup` cache);
 *   2. open its libraries by absolute path with RTLD_GLOBAL through the
 *      preload shim (`st-native-preload.<platform>.node`, which links no
 *      libtorch), CUDA's too where they load and a driver is there;
 *   3. load the addon through the loader napi-rs generated
 *      (native/node/binding.cjs): the clone's own build when present, else
 *      the platform package npm installed (st-native-linux-x64-gnu).
 * The dynamic loader reads LD_LIBRARY_PATH once at process start, so
 * nothing here depends on it; this works from the CLI, from an `import` in
 * a service and inside worker threads (libraries are per process; the
 * addon is context-aware). Every failure is one NativeError with a code and
 * the command that fixes it, never a raw dlopen message alone.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { findLibtorch, LibtorchError, preloadLibtorch, SETUP_COMMAND, type LibtorchFound } from './runtime/libtorch.js';

const require = createRequire(import.meta.url);
/** dist/ts/native-loader.js -> the package root. */
const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const nodeDir = path.join(packageRoot, 'native', 'node');

/** An error from the native side or its loading, with a stable `code`. */
export class NativeError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'NativeError';
    this.code = code;
  }
}

/** napi-rs's platform naming; Linux glibc only (libtorch's wheels are). */
export function platformSuffix(): string | null {
  const arch = ({ x64: 'x64', arm64: 'arm64' } as Record<string, string>)[process.arch];
  if (process.platform !== 'linux' || !arch) return null;
  const glibc = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header?.glibcVersionRuntime;
  return glibc ? `linux-${arch}-gnu` : null;
}

export interface Loaded<T> {
  addon: T;
  /** The .node file that loaded. */
  addonPath: string;
  /** `st-native (this folder's build)` or the platform package's name. */
  addonPackage: string;
  libtorch: LibtorchFound;
  cuda: boolean;
  cudaError: string | null;
}

/** Where the addon and the shim are: this folder's build, else the platform package. */
export function locate(suffix: string): { dir: string; pkg: string } {
  const addon = `st-native.${suffix}.node`;
  if (existsSync(path.join(nodeDir, addon))) return { dir: nodeDir, pkg: 'st-native (this folder\'s build)' };
  const pkg = `st-native-${suffix}`;
  try {
    return { dir: path.dirname(require.resolve(`${pkg}/package.json`)), pkg };
  } catch {
    throw new NativeError(
      'ERR_NATIVE_MISSING',
      `the prebuilt addon for ${suffix} is not installed: the optional dependency ${pkg} is missing (installed with --no-optional or --omit=optional, or on another platform). Reinstall st-native with optional dependencies; in a clone, run \`npm install\` to build it.`,
    );
  }
}

/**
 * libtorch's OpenMP threads (libgomp) spin at the end of every parallel
 * region, 300,000 rounds by default, before they sleep. On a machine where
 * other processes want the cores, that spinning takes their time slices and
 * ours. Measured here (2 cores, ST step, batch 128, K=10; benches/load.mjs):
 * with two busy processes, libgomp's default ran 11-16 images/s, a passive
 * wait 28-35 and a spin of 20,000 rounds 26-31; quiet, 60-67 by default,
 * 55-62 passive and 61-66 with the short spin. So unless the user chose
 * (OMP_WAIT_POLICY or GOMP_SPINCOUNT set), st-native spins 20,000 rounds:
 * the quiet speed of the default and the loaded speed of passive. libgomp
 * reads the variable when it is loaded, so this runs before libtorch is
 * opened; child processes inherit it.
 */
export const OPENMP_SPIN_ROUNDS = '20000';

export function boundOpenMpSpinning(env: NodeJS.ProcessEnv = process.env): void {
  if (env.OMP_WAIT_POLICY === undefined && env.GOMP_SPINCOUNT === undefined) env.GOMP_SPINCOUNT = OPENMP_SPIN_ROUNDS;
}

export function loadAddon<T>(): Loaded<T> {
  boundOpenMpSpinning();
  const suffix = platformSuffix();
  if (!suffix) {
    throw new NativeError('ERR_UNSUPPORTED_PLATFORM', `st-native runs on Linux x64/arm64 with glibc (libtorch's platforms); this is ${process.platform}-${process.arch}`);
  }
  const where = locate(suffix);
  const found = findLibtorch();
  if (!found.ok) throw new NativeError('ERR_LIBTORCH', found.error.message);
  const shimPath = path.join(where.dir, `st-native-preload.${suffix}.node`);
  if (!existsSync(shimPath)) throw new NativeError('ERR_NATIVE_MISSING', `${shimPath} is missing: the ${where.pkg} install is incomplete; reinstall it`);
  const shim = require(shimPath) as { dlopenGlobal(file: string): void };
  let preload;
  try {
    preload = preloadLibtorch(found, (file) => shim.dlopenGlobal(file));
  } catch (e) {
    if (e instanceof LibtorchError) throw new NativeError('ERR_LIBTORCH', e.message);
    throw e;
  }
  const addonPath = path.join(where.dir, `st-native.${suffix}.node`);
  let addon: T;
  try {
    // The generated loader tries the local file, then the platform package.
    addon = require(path.join(nodeDir, 'binding.cjs')) as T;
  } catch (e) {
    const cause = e instanceof Error ? e.message : String(e);
    throw new NativeError(
      'ERR_NATIVE_LOAD',
      `the addon ${addonPath} did not load with libtorch ${found.version} from ${found.libDir} (${found.source}): ${cause.split('\n')[0]}\nRun \`npx st-native doctor\`; \`${SETUP_COMMAND}\` installs a libtorch it loads with.`,
    );
  }
  return {
    addon,
    addonPath,
    addonPackage: where.pkg,
    libtorch: found,
    cuda: preload.cuda,
    cudaError: preload.cudaError ?? null,
  };
}
