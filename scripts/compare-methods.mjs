// Trains every method on the embedded MNIST digits with the same budget and
// several seeds through the public API, and prints a Markdown table of clean
// and PGD-20 accuracy (mean ± sample standard deviation, and the range over
// seeds). `npm run compare` (builds first); options:
//
//   --train-size N   training digits (default 2000, the first N: class-balanced)
//   --test-size N    held-out digits evaluated (default 500)
//   --epochs N       (default 2)
//   --steps K        inner steps of every adversarial method (default: the presets', 5)
//   --batch-size N   (default 32; the presets' is 64)
//   --seeds a,b,c    (default 0,1,2)
//   --methods m,...  preset slugs (default: all; see METHODS below)
//   --threads N      libtorch threads (default: libtorch's)
//   --json FILE      also write every run's numbers as JSON
//
// Each method runs its `mnist-<slug>-quick` preset (the same model, optimiser,
// schedule, eps 0.2 for all), with the size, epoch, batch and step
// overrides above. Only the final epoch is evaluated (PGD-20, eps 0.2, step
// 0.02, random start, the first --test-size test digits), so every method is
// compared at the same point of its training.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

const METHODS = [
  ['natural', 'plain CE (natural)'],
  ['pgd-at', 'PGD-AT'],
  ['trades', 'TRADES'],
  ['mart', 'MART'],
  ['collaborative', 'collaborative only (Eq. 5)'],
  ['st', 'ST'],
  ['trades-awp', 'TRADES-AWP'],
  ['st-awp', 'ST-AWP'],
];

const { values } = parseArgs({
  options: {
    'train-size': { type: 'string', default: '2000' },
    'test-size': { type: 'string', default: '500' },
    epochs: { type: 'string', default: '2' },
    steps: { type: 'string' },
    'batch-size': { type: 'string', default: '32' },
    seeds: { type: 'string', default: '0,1,2' },
    methods: { type: 'string', default: METHODS.map(([m]) => m).join(',') },
    threads: { type: 'string' },
    json: { type: 'string' },
  },
});
const int = (name) => {
  const n = Number(values[name]);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name}: expected a non-negative integer, got ${values[name]}`);
  return n;
};
const trainSize = int('train-size');
const testSize = int('test-size');
const epochs = int('epochs');
const steps = values.steps === undefined ? null : int('steps');
const batchSize = int('batch-size');
const seeds = values.seeds.split(',').map(Number);
const methods = values.methods.split(',');
for (const m of methods) {
  if (!METHODS.some(([slug]) => slug === m)) throw new Error(`--methods: unknown method ${m}; known: ${METHODS.map(([s]) => s).join(', ')}`);
}

// The public API, by package name (run `npm run build` first; `npm run compare` does).
const { train, presets, resolveConfig } = await import('st-native');

/** The method of a preset with the inner steps set to --steps K, if given (AWP: its inner method's). */
function withSteps(method) {
  if (steps === null || method.name === 'natural') return method;
  if (method.name === 'awp') return { ...method, inner: { ...method.inner, steps } };
  return { ...method, steps };
}

const runsDir = mkdtempSync(path.join(tmpdir(), 'st-native-compare-'));
const results = [];
const started = Date.now();
try {
  for (const slug of methods) {
    const preset = presets.find((p) => p.name === `mnist-${slug}-quick`);
    if (!preset) throw new Error(`no preset mnist-${slug}-quick`);
    const method = withSteps(resolveConfig({ preset: preset.name }).method);
    for (const seed of seeds) {
      const t0 = Date.now();
      const { summary } = await train({
        preset: preset.name,
        overrides: {
          method,
          dataset: { trainSize, testSize },
          epochs,
          batchSize,
          seed,
          device: 'cpu',
          threads: values.threads ? Number(values.threads) : null,
          evalSchedule: { every: epochs, lastEpochs: 0 },
          runsDir,
          runName: `${slug}-seed${seed}`,
        },
      });
      const r = summary.last;
      const seconds = (Date.now() - t0) / 1000;
      results.push({ method: slug, seed, clean: r.cleanAcc, pgd20: r.robustAcc, attack: r.attack, samples: r.samples, seconds });
      console.error(`${slug} seed ${seed}: clean ${(100 * r.cleanAcc).toFixed(1)}%, ${r.attack} ${(100 * r.robustAcc).toFixed(1)}% (${seconds.toFixed(0)} s)`);
    }
  }
} finally {
  rmSync(runsDir, { recursive: true, force: true });
}

const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
const sd = (xs) => (xs.length < 2 ? 0 : Math.sqrt(xs.reduce((a, x) => a + (x - mean(xs)) ** 2, 0) / (xs.length - 1)));
const pct = (x) => (100 * x).toFixed(1);
const cell = (xs) => `${pct(mean(xs))} ± ${pct(sd(xs))} (${pct(Math.min(...xs))}–${pct(Math.max(...xs))})`;

const minutes = ((Date.now() - started) / 60000).toFixed(1);
const lines = [
  `Embedded MNIST digits, SmallCNN: ${trainSize} training digits, ${epochs} epochs, batch ${batchSize}, SGD lr 0.03 momentum 0.9; ` +
    `eps 0.2, step 0.04, inner steps K ${steps ?? 5}; PGD-20 (eps 0.2, step 0.02, random start) on ${testSize} test digits after the last epoch; ` +
    `seeds ${seeds.join(', ')}; mean ± sample standard deviation (min–max), in %. ` +
    `${minutes} min in all (\`npm run compare\`).`,
  '',
  '| method | preset | clean | PGD-20 | s / run |',
  '|---|---|---|---|---|',
];
for (const slug of methods) {
  const rs = results.filter((r) => r.method === slug);
  const label = METHODS.find(([s]) => s === slug)[1];
  lines.push(`| ${label} | \`mnist-${slug}-quick\` | ${cell(rs.map((r) => r.clean))} | ${cell(rs.map((r) => r.pgd20))} | ${mean(rs.map((r) => r.seconds)).toFixed(0)} |`);
}
console.log(lines.join('\n'));
if (values.json) writeFileSync(values.json, `${JSON.stringify({ trainSize, testSize, epochs, steps, seeds, results }, null, 2)}\n`);
