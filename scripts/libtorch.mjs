// Finds libtorch 2.11.0 for the build (tch 0.24 pairs with it exactly), in order:
//   1. LIBTORCH            a libtorch folder (used as is)
//   2. an importable Python torch 2.11.0 (python3 on PATH, or ST_NATIVE_PYTHON)
//   3. the project's own virtual environment .venv/, created by
//      scripts/provision-libtorch.sh (pip install torch==2.11.0 from PyPI; the
//      CUDA-enabled wheel also runs on CPU). Idempotent.
// Returns the environment variables cargo needs (torch-sys reads them).
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const TORCH_VERSION = '2.11.0';
export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const venvBin = path.join(root, '.venv', 'bin');

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

function pythonEnv(binDir) {
  // torch-sys runs `python` when VIRTUAL_ENV is set, `python3` otherwise.
  return {
    LIBTORCH_USE_PYTORCH: '1',
    VIRTUAL_ENV: path.dirname(binDir),
    PATH: `${binDir}${path.delimiter}${process.env.PATH ?? ''}`,
  };
}

/** @returns {{ source: string, env: Record<string, string> }} */
export function resolveLibtorch({ provision = true, log = console.error } = {}) {
  if (process.env.LIBTORCH) {
    return { source: `LIBTORCH=${process.env.LIBTORCH}`, env: {} };
  }
  if (existsSync(path.join(venvBin, 'python')) && torchVersionOf(path.join(venvBin, 'python')) === TORCH_VERSION) {
    return { source: `.venv (torch ${TORCH_VERSION})`, env: pythonEnv(venvBin) };
  }
  const python = process.env.ST_NATIVE_PYTHON ?? 'python3';
  const version = torchVersionOf(python);
  if (version === TORCH_VERSION) {
    const binDir = path.dirname(
      execFileSync(python, ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).trim(),
    );
    return { source: `${python} (torch ${version})`, env: pythonEnv(binDir) };
  }
  if (!provision) {
    throw new Error(
      `libtorch ${TORCH_VERSION} not found: set LIBTORCH, install torch==${TORCH_VERSION} for python3, or run scripts/provision-libtorch.sh`,
    );
  }
  log(
    version
      ? `python3 has torch ${version}, not ${TORCH_VERSION}; provisioning a project-local .venv`
      : `no torch ${TORCH_VERSION} found; provisioning a project-local .venv (pip install torch==${TORCH_VERSION})`,
  );
  execFileSync('bash', [path.join(root, 'scripts', 'provision-libtorch.sh')], { stdio: 'inherit' });
  return { source: `.venv (torch ${TORCH_VERSION}, provisioned)`, env: pythonEnv(venvBin) };
}
