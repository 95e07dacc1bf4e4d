/**
 * The device check's CPU dry run (README "Device check"): the same bundle
 * and the same pipeline a CUDA host runs (benches/device-check.sh), with
 * tiny sizes on the CPU, so that the prepared GPU check cannot rot. It
 * builds the bundle (the `device_check` example, the Python references,
 * torchattacks), runs every part under its time limit, and checks the
 * report: every part finished, every correctness check holds its stated
 * tolerance, and here, where "device" and CPU are the same, the f32
 * comparisons are exact; the speed, AutoAttack and memory parts gave their
 * figures; a real allocation failure (made safe by an address-space limit)
 * went through the evaluation's batch halving.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { root } from './helpers/cli.js';
import { needsTorchPython } from './helpers/torch-python.js';

const { findTorchPython } = (await import(pathToFileURL(path.join(root, 'scripts', 'libtorch.mjs')).href)) as { findTorchPython: () => string | null };
const { ensureTestPackages } = (await import(pathToFileURL(path.join(root, 'scripts', 'python-test-deps.mjs')).href)) as {
  ensureTestPackages: (python: string, log?: (s: string) => void) => void;
};

interface Line {
  check?: string;
  impl?: string;
  name?: string;
  variant?: string;
  method?: string;
  pass?: boolean;
  metrics?: Record<string, number>;
  tolerances?: Record<string, number>;
  imagesPerSec?: number;
  epochSeconds?: number;
  finite?: boolean;
  accuracy?: number;
  clean?: number;
  seconds?: number;
  largestFitting?: number | null;
  firstOutOfMemory?: { batch: number; message: string } | null;
  completed?: boolean;
  halved?: boolean;
  notices?: string[];
  torchCudaLoaded?: boolean;
}
interface Part {
  part: string;
  ok: boolean;
  seconds: number;
  limitSeconds: number;
  lines: Line[];
  stderrTail: string;
}
interface Report {
  dryRun: boolean;
  seconds: number;
  parts: Part[];
  summary: { pass: boolean; failures: string[] };
}

const python = findTorchPython();
if (!python) {
  needsTorchPython('device check dry run');
} else {
  test('device check: the CPU dry run of the prepared GPU check passes and reports every part', (t) => {
    ensureTestPackages(python, (s) => t.log(s));
    const dir = mkdtempSync(path.join(tmpdir(), 'st-device-check-'));
    const out = path.join(dir, 'report');
    const env = { ...process.env, PYTHON: python, DEVICE_BUNDLE: path.join(dir, 'bundle'), OMP_WAIT_POLICY: process.env.OMP_WAIT_POLICY ?? 'PASSIVE' };
    const script = path.join(root, 'benches', 'device-check.sh');
    const bundle = spawnSync('bash', [script, 'bundle'], { cwd: root, env, encoding: 'utf8' });
    t.is(bundle.status, 0, bundle.stderr);
    t.regex(bundle.stdout, /bundle .*, \d+ KiB \(limit 65536 KiB\)/);
    const started = Date.now();
    const run = spawnSync('bash', [script, '--dry-run', out], { cwd: root, env: { ...env, DEVICE_CHECK_SKIP_BUNDLE: '1' }, encoding: 'utf8' });
    const seconds = (Date.now() - started) / 1000;
    t.log(`dry run ${seconds.toFixed(1)} s`);
    t.true(existsSync(path.join(out, 'report.json')), run.stderr);
    const report = JSON.parse(readFileSync(path.join(out, 'report.json'), 'utf8')) as Report;
    t.deepEqual(report.summary.failures, [], run.stdout + run.stderr);
    t.is(run.status, 0);
    t.true(report.dryRun);
    const part = (name: string) => {
      const p = report.parts.find((x) => x.part === name);
      if (!p) throw new Error(`no part ${name}`);
      t.true(p.ok, `${name}: ${p.stderrTail}`);
      t.true(p.seconds <= p.limitSeconds);
      return p.lines;
    };

    // Correctness: every metric within its tolerance; CPU vs CPU is exact.
    const corr = part('correctness').filter((l) => l.check === 'correctness');
    t.deepEqual(
      [...new Set(corr.map((l) => l.name))].sort(),
      ['deterministic', 'forward', 'pgd', 'reduced-precision', 'st-outer', 'st-step', 'trades-outer', 'trades-step'],
    );
    for (const l of corr) {
      for (const [k, v] of Object.entries(l.metrics ?? {})) t.true(v <= (l.tolerances ?? {})[k]!, `${l.name} ${l.variant} ${k} ${v}`);
      t.true(l.pass);
      if (['forward', 'st-outer', 'trades-outer', 'pgd', 'st-step', 'trades-step', 'deterministic'].includes(l.name!)) {
        for (const [k, v] of Object.entries(l.metrics ?? {})) t.is(v, 0, `${l.name} ${k}: CPU vs CPU must be exact`);
      }
    }
    const bf16 = corr.find((l) => l.name === 'reduced-precision' && l.variant === 'bf16')!;
    t.true(bf16.metrics!.logits! > 0, 'bf16 autocast really ran (logits differ from f32)');

    // Speed: both implementations, every method and variant, finite.
    const speed = [...part('speed'), ...part('speed-reference')].filter((l) => l.check === 'speed');
    for (const impl of ['st-native', 'pytorch-reference']) {
      for (const method of ['st', 'pgd_at']) {
        for (const variant of ['f32', 'bf16', 'f32+cl']) {
          const l = speed.find((x) => x.impl!.startsWith(impl) && x.method === method && x.variant === variant);
          t.truthy(l, `${impl} ${method} ${variant}`);
          t.true(l!.finite && l!.imagesPerSec! > 0 && Math.abs(l!.epochSeconds! - 50000 / l!.imagesPerSec!) < 1e-6 * l!.epochSeconds!);
        }
      }
    }

    // AutoAttack: ours and torchattacks on the same model and images.
    const ours = part('autoattack').find((l) => l.check === 'autoattack')!;
    const ref = part('autoattack-reference').find((l) => l.impl === 'torchattacks')!;
    t.is(ours.clean, ref.clean, 'the same model and images on both sides');
    for (const l of [ours, ref]) t.true(l.accuracy! >= 0 && l.accuracy! <= l.clean!);

    // Memory: a real allocation failure, and the halving path finishing.
    const mem = part('memory');
    const largest = mem.find((l) => l.check === 'largest-batch')!;
    t.true(largest.largestFitting! >= 1);
    t.regex(largest.firstOutOfMemory!.message, /can't allocate memory/);
    const halving = mem.find((l) => l.check === 'oom-halving')!;
    t.true(halving.completed && halving.halved);
    t.regex(halving.notices!.join('\n'), /out of memory at batch size \d+; running it again at batch size \d+/);

    t.true(part('correctness').some((l) => l.check === 'start' && typeof l.torchCudaLoaded === 'boolean'));
    const md = readFileSync(path.join(out, 'report.md'), 'utf8');
    for (const h of ['## Correctness', '## Training-step speed', '## AutoAttack', '## Memory']) t.true(md.includes(h), h);
    rmSync(dir, { recursive: true, force: true });
  });
}
