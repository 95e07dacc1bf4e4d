/**
 * ST_NATIVE_LIBTORCH pointing nowhere, with a usable libtorch elsewhere: the
 * search passes over it, and every command that loads libtorch says so in
 * the words doctor uses (one function makes both).
 */
import test from 'ava';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { findLibtorch } from '../ts/runtime/libtorch.js';
import { root } from './helpers/cli.js';

const nowhere = path.join(mkdtempSync(path.join(tmpdir(), 'st-lt-')), 'no-such-libtorch');
const run = (...args: string[]) =>
  spawnSync(process.execPath, [path.join(root, 'bin', 'st-native.js'), ...args], { encoding: 'utf8', env: { ...process.env, CI: 'true', ST_NATIVE_LIBTORCH: nowhere } });
const sentence = `ST_NATIVE_LIBTORCH=${nowhere} is ignored: does not exist`;
const fix = 'point ST_NATIVE_LIBTORCH at a libtorch 2.11.0 folder, or unset it';

const usable = findLibtorch({ env: { ...process.env, ST_NATIVE_LIBTORCH: undefined } });
if (!usable.ok) test.skip('needs a libtorch besides ST_NATIVE_LIBTORCH (npm install provisions .venv)', () => undefined);
else {
  test('doctor, train and models name the ignored variable in the same words', (t) => {
    const doctor = run('doctor');
    t.true(doctor.stdout.includes(`! ${sentence}\n    fix: ${fix}`), doctor.stdout);
    t.notRegex(doctor.stderr, /StNativeWarning/, 'doctor says it once, among its problems');

    // train loads libtorch before its device check refuses (exit 2, nothing trained).
    const runs = mkdtempSync(path.join(tmpdir(), 'st-lt-runs-'));
    const train = run('train', '--device', 'cuda', '--epochs', '1', '--runs-dir', runs);
    t.true(train.stderr.includes(`StNativeWarning: ${sentence}; using libtorch ${usable.version} from ${usable.source}`), train.stderr);
    t.true(train.stderr.includes(fix), train.stderr);
    const models = run('models');
    t.is(models.status, 0, models.stderr);
    t.true(models.stderr.includes(sentence), models.stderr);
  });
}

test('with no libtorch anywhere, the not-found error starts with the same sentence', (t) => {
  const r = findLibtorch({ env: { ST_NATIVE_LIBTORCH: nowhere, ST_NATIVE_PYTHON: path.join(nowhere, 'python') }, packageRoot: nowhere, cache: nowhere });
  t.false(r.ok);
  if (!r.ok) t.true(r.error.message.startsWith(`${sentence} (${fix}).\nlibtorch 2.11.0 not found. Looked at:`), r.error.message);
});
