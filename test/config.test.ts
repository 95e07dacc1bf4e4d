import test from 'ava';
import { baseConfig, ConfigError, mergeConfig, parseSetArgument, presets, resolveConfig, toNativeConfig } from '../ts/config/index.js';

function issuesOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (e) {
    if (e instanceof ConfigError) return e.issues.map((i) => `${i.path}: ${i.message}`);
    throw e;
  }
  throw new Error('expected a ConfigError');
}

test('the default config is the mnist-st-quick preset and validates', (t) => {
  const cfg = resolveConfig();
  t.deepEqual(cfg, baseConfig);
  t.is(cfg.method.name, 'st');
});

test('every preset validates, has a unique name and a one-line description', (t) => {
  for (const p of presets) t.notThrows(() => resolveConfig({ preset: p.name }), p.name);
  t.is(new Set(presets.map((p) => p.name)).size, presets.length);
  for (const p of presets) t.true(p.description.length > 0 && !p.description.includes('\n'), p.name);
  t.deepEqual(
    presets.map((p) => p.name).filter((n) => ['mnist-st-quick', 'mnist-natural-quick', 'cifar10-st-paper'].includes(n)),
    ['mnist-st-quick', 'mnist-natural-quick', 'cifar10-st-paper'],
  );
});

test('the paper preset carries the paper\'s CIFAR-10 settings', (t) => {
  const c = resolveConfig({ preset: 'cifar10-st-paper' });
  t.like(c, { model: 'resnet18', epochs: 120, batchSize: 128, dataset: { name: 'cifar10' } });
  t.like(c.method, { name: 'st', reg: 'symmkl', beta: 6, epsilon: 8 / 255, stepSize: 2 / 255, steps: 10 });
  t.like(c.optimizer, { lr: 0.1, momentum: 0.9, weightDecay: 5e-4, milestones: [80, 100], gamma: 0.1 });
  t.deepEqual(c.augment, { randomCropPadding: 4, horizontalFlip: true });
  t.like(c.eval, { epsilon: 8 / 255, stepSize: 2 / 255, steps: 20, randomStart: true });
  t.deepEqual(resolveConfig({ preset: 'mnist-natural-quick' }).method, { name: 'natural' });
});

test('bad values name their dotted path, what was expected and what was given', (t) => {
  const issues = issuesOf(() => resolveConfig({ overrides: [{ method: { beta: 'six' } }, { eval: { steps: -1 } }] }));
  t.deepEqual(issues, ['method.beta: expected a number, got "six"', 'eval.steps: expected a number >= 0, got -1']);
  const one = (o: Record<string, unknown>) => issuesOf(() => resolveConfig({ overrides: [o] }));
  t.deepEqual(one({ method: { steps: 2.5 } }), ['method.steps: expected an integer, got 2.5']);
  t.deepEqual(one({ optimizer: { lr: 0 } }), ['optimizer.lr: expected a number > 0, got 0']);
  t.deepEqual(one({ optimizer: { momentum: 1 } }), ['optimizer.momentum: expected a number < 1, got 1']);
  t.deepEqual(one({ device: 'gpu' }), ['device: expected one of "auto", "cpu", "cuda", got "gpu"']);
  t.deepEqual(one({ method: { name: 'trades' } }), ['method.name: expected one of "st", "natural", "pgd_at", got "trades"']);
  t.deepEqual(one({ optimizer: { milestones: [80, 0] } }), ['optimizer.milestones.1: expected a number >= 1, got 0']);
  t.deepEqual(one({ runsDir: '' }), ['runsDir: expected at least 1 character, got ""']);
  t.deepEqual(one({ runName: 'a b' }), ['runName: expected letters, digits, ".", "_" or "-" only, got "a b"']);
  // NaN is not "null" (what JSON.stringify would print).
  t.deepEqual(one({ seed: Number.NaN }), ['seed: expected a number, got NaN']);
});

test('the error message lists every issue, one per line', (t) => {
  const err = t.throws(() => resolveConfig({ overrides: [{ epochs: 0, batchSize: 'x' }] }), { instanceOf: ConfigError });
  t.is(err!.message, 'epochs: expected a number >= 1, got 0\nbatchSize: expected a number, got "x"');
  t.is(err!.code, 'ERR_INVALID_CONFIG');
});

test('unknown keys are rejected at any depth, named by path, with a suggestion when close', (t) => {
  t.deepEqual(issuesOf(() => resolveConfig({ overrides: [{ epoch: 3 }] })), ['epoch: unknown field (did you mean "epochs"?)']);
  t.deepEqual(issuesOf(() => resolveConfig({ overrides: [{ optimizer: { learningRate: 1 } }] })), ['optimizer.learningRate: unknown field']);
  t.deepEqual(issuesOf(() => resolveConfig({ overrides: [{ method: { betta: 1, stepsize: 2 } }] })), [
    'method.betta: unknown field (did you mean "beta"?)',
    'method.stepsize: unknown field (did you mean "stepSize"?)',
  ]);
  // A field of another method is unknown to this one.
  t.deepEqual(issuesOf(() => resolveConfig({ overrides: [{ method: { name: 'natural', beta: 1 } }] })), ['method.beta: unknown field']);
});

test('unknown presets are named with the alternatives', (t) => {
  const [issue] = issuesOf(() => resolveConfig({ preset: 'mnist-fast' }));
  t.regex(issue!, /^preset: unknown preset "mnist-fast"; expected one of mnist-st-quick/);
});

test('switching method replaces the method instead of merging fields into it', (t) => {
  const cfg = resolveConfig({ overrides: [{ method: { name: 'natural' } }] });
  t.deepEqual(cfg.method, { name: 'natural' });
  const st = resolveConfig({ overrides: [{ method: { beta: 6 } }] });
  t.is(st.method.name === 'st' ? st.method.beta : -1, 6);
});

test('merge replaces arrays and merges objects', (t) => {
  t.deepEqual(mergeConfig({ a: [1, 2], b: { c: 1, d: 2 } }, { a: [3], b: { d: 4 } }), { a: [3], b: { c: 1, d: 4 } });
});

test('--set parses dotted keys and JSON values', (t) => {
  t.deepEqual(parseSetArgument('method.beta=6'), { method: { beta: 6 } });
  t.deepEqual(parseSetArgument('optimizer.milestones=[2,3]'), { optimizer: { milestones: [2, 3] } });
  t.deepEqual(parseSetArgument('runName=abc'), { runName: 'abc' });
  t.deepEqual(parseSetArgument('dataset.trainSize=null'), { dataset: { trainSize: null } });
  t.throws(() => parseSetArgument('novalue'), { instanceOf: ConfigError, message: /expected key\.path=value/ });
});

test('the native config carries exactly the validated values', (t) => {
  const cfg = resolveConfig({ overrides: [{ epochs: 7, seed: 3 }] });
  const n = toNativeConfig(cfg, 10, 'runs/x/checkpoints');
  t.is(n.epochs, 7);
  t.is(n.seed, 3);
  t.is(n.numClasses, 10);
  t.true(n.outDir.endsWith('runs/x/checkpoints'));
  t.deepEqual(n.method, cfg.method);
  t.is(n.initCheckpoint, null);
});
