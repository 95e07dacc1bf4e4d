// Python packages the tests use on top of the provisioning torch (the one
// scripts/libtorch.mjs finds): safetensors for the export round trip
// (benches/reference/export_check.py) and torchattacks for the attack
// agreement test (test/eval-agreement.test.ts). Installed into that Python
// only when missing, for tests only. torchattacks is installed without its
// declared dependencies, which would replace torch (torchvision pins one):
// it imports numpy and scipy, nothing else it declares.
import { execFileSync, spawnSync } from 'node:child_process';

export const TEST_PACKAGES = [
  { module: 'safetensors.torch', pip: ['safetensors'] },
  { module: 'numpy', pip: ['numpy'] },
  { module: 'scipy.optimize', pip: ['scipy'] },
  { module: 'torchattacks', pip: ['--no-deps', 'torchattacks==3.5.1'] },
];

/** Whether `python` imports `module`. */
export function hasModule(python, module) {
  return spawnSync(python, ['-W', 'ignore', '-c', `import ${module}`], { stdio: 'ignore' }).status === 0;
}

/** Installs what is missing with pip into `python`; throws when pip fails. */
export function ensureTestPackages(python, log = console.error) {
  for (const p of TEST_PACKAGES) {
    if (hasModule(python, p.module)) continue;
    log(`tests: installing ${p.pip.filter((a) => !a.startsWith('-')).join(' ')} into ${python} (test-only)`);
    execFileSync(python, ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', ...p.pip], { stdio: ['ignore', 'inherit', 'inherit'] });
  }
}
