/**
 * Tests that cross-check against PyTorch need the provisioning Python with
 * torch 2.11.0 (`npm install` puts one in .venv/). On a developer's machine
 * without it such a test shows as skipped; in CI (`CI` set) its absence is a
 * failure, so a provisioning problem can never pass CI by skipping checks.
 */
import test from 'ava';

/** Registers `title` as skipped (locally) or failed (in CI), saying what is missing. */
export function needsTorchPython(title: string): void {
  const why = 'no Python with torch 2.11.0 was found (npm install provisions .venv/; scripts/provision-libtorch.sh)';
  if (process.env.CI) {
    test(title, (t) => {
      t.fail(`${why}: this check cannot run, and CI must not pass without it`);
    });
  } else {
    test.skip(`${title}: ${why}`, () => undefined);
  }
}
