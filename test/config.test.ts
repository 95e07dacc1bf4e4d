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

test('every preset validates', (t) => {
  for (const p of presets) t.notThrows(() => resolveConfig({ preset: p.name }), p.name);
});

test('bad values name their dotted path and what was expected', (t) => {
  const issues = issuesOf(() => resolveConfig({ overrides: [{ method: { beta: 'six' } }, { eval: { steps: -1 } }] }));
  t.true(issues.includes('method.beta: expected number, got "six"'), issues.join('\n'));
  t.true(issues.some((i) => i.startsWith('eval.steps: ') && i.endsWith('got -1')), issues.join('\n'));
});

test('unknown keys are rejected, at any depth', (t) => {
  t.deepEqual(issuesOf(() => resolveConfig({ overrides: [{ epochz: 3 }] })), [': unknown field "epochz"']);
  t.deepEqual(issuesOf(() => resolveConfig({ overrides: [{ optimizer: { learningRate: 1 } }] })), ['optimizer: unknown field "learningRate"']);
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
