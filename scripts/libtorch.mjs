// Finds libtorch 2.11.0 for the build (tch 0.24 pairs with it exactly), in order:
//   1. LIBTORCH            a libtorch folder (used as is)
//   2. an importable Python torch 2.11.0: ST_NATIVE_PYTHON or python3 on PATH,
//      then the project's own .venv/ if an earlier install provisioned it
//   3. otherwise scripts/provision-libtorch.sh creates .venv/ and installs
//      torch==2.11.0 from PyPI (the CUDA-enabled wheel also runs on CPU).
// Returns the environment cargo needs (torch-sys reads it) and the Python that
// has torch, if any (the parity check and the benchmark's reference use it).
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const TORCH_VERSION = '2.11.0';
export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const venvPython = path.join(root, '.venv', 'bin', 'python');

function torchVersionOf(python) {
  try {
    return execFileSync(python, ['-c', 'import torch; print(torch.__version__.split("+")[0])'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch {
    return null;
  }
}

function executableOf(python) {
  return execFileSync(python, ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).trim();
}

/** The first Python whose torch is 2.11.0, as an absolute path, or null. */
export function findTorchPython() {
  for (const candidate of [process.env.ST_NATIVE_PYTHON ?? 'python3', venvPython]) {
    if (torchVersionOf(candidate) === TORCH_VERSION) return executableOf(candidate);
  }
  return null;
}

// torch-sys runs `python` when VIRTUAL_ENV is set and `python3` otherwise, from
// PATH; put the chosen interpreter's folder first and set VIRTUAL_ENV only
// when that folder has a `python`.
function pythonEnv(python) {
  const binDir = path.dirname(python);
  return {
    LIBTORCH_USE_PYTORCH: '1',
    PATH: `${binDir}${path.delimiter}${process.env.PATH ?? ''}`,
    VIRTUAL_ENV: existsSync(path.join(binDir, 'python')) ? path.dirname(binDir) : null,
  };
}

/** process.env with `extra` applied; a null value removes the variable. */
export function envWith(extra) {
  const env = { ...process.env };
  for (const [k, v] of Object.entries(extra)) {
    if (v === null) delete env[k];
    else env[k] = v;
  }
  return env;
}

/** @returns {{ source: string, env: Record<string, string | null>, python: string | null }} */
export function resolveLibtorch({ provision = true, log = console.error } = {}) {
  if (process.env.LIBTORCH) {
    return { source: `LIBTORCH=${process.env.LIBTORCH}`, env: {}, python: findTorchPython() };
  }
  const python = findTorchPython();
  if (python) return { source: `${python} (torch ${TORCH_VERSION})`, env: pythonEnv(python), python };
  if (!provision) {
    throw new Error(
      `libtorch ${TORCH_VERSION} not found: set LIBTORCH, install torch==${TORCH_VERSION} for python3, or run scripts/provision-libtorch.sh`,
    );
  }
  log(`no Python with torch ${TORCH_VERSION} found; provisioning a project-local .venv (pip install torch==${TORCH_VERSION})`);
  execFileSync('bash', [path.join(root, 'scripts', 'provision-libtorch.sh')], { stdio: 'inherit' });
  return { source: `${venvPython} (torch ${TORCH_VERSION}, provisioned)`, env: pythonEnv(venvPython), python: venvPython };
}
