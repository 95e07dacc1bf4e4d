// One target triple for every cargo command of the clone. `napi build` always
// passes an explicit `--target` (its artifacts land in target/<triple>/), and
// cargo keys compiled dependencies by that directory: a `cargo test` or
// `cargo clippy` without the same `--target` would compile serde, tch and the
// C++ build scripts a second time into target/release/ (about 200 s of the
// test stage on the 2-core machine). So the build, the tests, the lint, the
// examples and the benches all name the host triple explicitly.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { root } from './libtorch.mjs';

function hostTriple() {
  const info = execFileSync('rustc', ['-vV'], { encoding: 'utf8' });
  const host = /^host: (\S+)$/m.exec(info)?.[1];
  if (!host) throw new Error(`rustc -vV named no host triple:\n${info}`);
  return host;
}

export const targetTriple = hostTriple();
/** Pass to every cargo (and napi) command: `cargo test ...cargoTarget`. */
export const cargoTarget = ['--target', targetTriple];
/** Where release artifacts land: libraries here, examples under `examples/`. */
export const releaseDir = path.join(root, 'target', targetTriple, 'release');
