import test from 'ava';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { parseEvaluateOptions, parseTrainOptions } from '../ts/api-options.js';
import { overridesFrom } from '../ts/cli/train.js';
import {
  baseConfig,
  ConfigError,
  MAX_OVERRIDE_DEPTH,
  mergeConfig,
  parseSetArgument,
  presets,
  readJsonFile,
  resolveConfig,
  toNativeConfig,
} from '../ts/config/index.js';
import { evaluate, train } from '../ts/index.js';

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
    presets.map((p) => p.name).slice(0, 3),
    ['mnist-st-quick', 'mnist-natural-quick', 'mnist-pgd-at-quick'],
  );
});

// The paper's training settings (method page §5), typed in here from the
// table, independently of ts/config/presets.ts. Milestones as the authors'
// code applies them (lr x0.1 from epoch 80 itself: after epoch 79).
const TABLE = {
  cifar10: { alpha: 2 / 255, epochs: 120, lr: 0.1, milestones: [79, 99], beta: 6, crop: 4, flip: true },
  cifar100: { alpha: 2 / 255, epochs: 120, lr: 0.1, milestones: [79, 99], beta: 4, crop: 4, flip: true },
  svhn: { alpha: 1 / 255, epochs: 80, lr: 0.01, milestones: [49, 64], beta: 8, crop: 0, flip: false },
} as const;
/** The table's last row: TRADES beta 6 and MART beta 5 on every dataset. */
const TRADES_BETA = 6;
const MART_BETA = 5;

test('every paper preset resolves to the settings table of the paper', (t) => {
  type Method = 'st' | 'pgd_at' | 'trades' | 'mart' | 'collaborative';
  const expected: [string, keyof typeof TABLE, string, Method][] = [];
  const slug = (m: Method) => (m === 'pgd_at' ? 'pgd-at' : m);
  for (const dataset of ['cifar10', 'cifar100', 'svhn'] as const) {
    for (const m of ['st', 'pgd_at', 'trades', 'mart'] as const) expected.push([`${dataset}-resnet18-${slug(m)}`, dataset, 'resnet18', m]);
  }
  for (const model of ['wrn34_10', 'wrn34_5']) {
    for (const m of ['st', 'pgd_at', 'trades', 'mart'] as const) expected.push([`cifar10-${model}-${slug(m)}`, 'cifar10', model, m]);
  }
  expected.push(['cifar10-resnet18-collaborative', 'cifar10', 'resnet18', 'collaborative']);
  t.is(expected.length, 21);
  t.true(expected.map(([n]) => n).includes('cifar10-resnet18-st') && expected.map(([n]) => n).includes('svhn-resnet18-pgd-at'));
  for (const [name, dataset, model, method] of expected) {
    const row = TABLE[dataset];
    const c = resolveConfig({ preset: name });
    t.like(c, { model, epochs: row.epochs, batchSize: 128, dataset: { name: dataset } }, name);
    const ball = { epsilon: 8 / 255, stepSize: row.alpha, steps: 10 };
    if (method === 'st') t.deepEqual(c.method, { name: 'st', reg: 'symmkl', beta: row.beta, branches: 'batched', ...ball }, name);
    else if (method === 'trades') t.deepEqual(c.method, { name: 'trades', beta: TRADES_BETA, ...ball }, name);
    else if (method === 'mart') t.deepEqual(c.method, { name: 'mart', beta: MART_BETA, ...ball }, name);
    // Eq. 5 with ST's beta (the paper gives none of its own).
    else if (method === 'collaborative') t.deepEqual(c.method, { name: 'collaborative', beta: row.beta, ...ball }, name);
    else t.deepEqual(c.method, { name: 'pgd_at', ...ball }, name);
    t.deepEqual(c.optimizer, { lr: row.lr, momentum: 0.9, weightDecay: 5e-4, nesterov: false, milestones: row.milestones, gamma: 0.1, schedule: 'multistep' }, name);
    t.deepEqual(c.augment, { randomCropPadding: row.crop, horizontalFlip: row.flip }, name);
    t.like(c.eval, { epsilon: 8 / 255, stepSize: 2 / 255, steps: 20, randomStart: true, maxSamples: null }, name);
  }
  t.deepEqual(resolveConfig({ preset: 'mnist-natural-quick' }).method, { name: 'natural' });
});

// AWP's settings (github.com/csdongxian/AWP, trades_AWP/train_trades_cifar.py),
// typed in here from that script: 200 epochs, lr 0.1 x0.1 from epoch 100 and
// again from 150 (`epoch >= 100` with 1-based epochs: our milestones decay
// after the named epoch, so 99 and 149), gamma 5e-3, AWP from epoch 10 on
// (`--awp-warmup 10`: 9 epochs without). ST-AWP takes the same AWP settings.
test('every AWP preset resolves to the TRADES-AWP code settings, around TRADES or ST', (t) => {
  let count = 0;
  for (const dataset of ['cifar10', 'cifar100'] as const) {
    for (const model of ['preact_resnet18', 'wrn34_10'] as const) {
      for (const inner of ['trades', 'st'] as const) {
        const name = `${dataset}-${model}-${inner}-awp`;
        const c = resolveConfig({ preset: name });
        const ball = { epsilon: 8 / 255, stepSize: 2 / 255, steps: 10 };
        const innerCfg =
          inner === 'trades'
            ? { name: 'trades', beta: TRADES_BETA, ...ball }
            : { name: 'st', reg: 'symmkl', beta: TABLE[dataset].beta, branches: 'batched', ...ball };
        t.like(c, { model, epochs: 200, batchSize: 128, dataset: { name: dataset } }, name);
        t.deepEqual(c.method, { name: 'awp', inner: innerCfg, gamma: 5e-3, warmup: 9 }, name);
        t.deepEqual(c.optimizer, { lr: 0.1, momentum: 0.9, weightDecay: 5e-4, nesterov: false, milestones: [99, 149], gamma: 0.1, schedule: 'multistep' }, name);
        t.deepEqual(c.augment, { randomCropPadding: 4, horizontalFlip: true }, name);
        t.like(c.eval, { epsilon: 8 / 255, stepSize: 2 / 255, steps: 20, randomStart: true, maxSamples: null }, name);
        count++;
      }
    }
  }
  t.is(count, 8);
  t.is(presets.filter((p) => p.name.endsWith('-awp')).length, 8);
});

// RST's settings (github.com/yaircarmon/semisup-adv, robust_self_training.py's
// defaults and its README's L-inf command: --distance l_inf --epsilon 0.031),
// typed in here from that script: WRN-28-10, batch 256, 200 epochs, lr 0.1
// cosine, SGD Nesterov momentum 0.9, weight decay 5e-4, TRADES beta 6, 10
// steps of 0.007, unsup_fraction 0.5, crop 4 + flip; evaluation as the ST
// paper states for its RST rows: PGD-20, eps 0.031, step 0.007, first 500
// test images (RST's eval: one batch of 500, no random start).
test('the RST presets resolve to the RST code settings, around TRADES (RST) or ST (ST-RST)', (t) => {
  const ball = { epsilon: 0.031, stepSize: 0.007, steps: 10 };
  const methods = {
    'cifar10-wrn28_10-rst': { name: 'trades', beta: 6, ...ball },
    'cifar10-wrn28_10-st-rst': { name: 'st', reg: 'symmkl', beta: 6, branches: 'batched', ...ball },
  };
  for (const [name, method] of Object.entries(methods)) {
    const c = resolveConfig({ preset: name });
    t.like(c, { model: 'wrn28_10', epochs: 200, batchSize: 256 }, name);
    t.deepEqual(c.dataset.extra, { file: null, fraction: 0.5 }, name);
    t.is(c.dataset.name, 'cifar10');
    t.deepEqual(c.method, method, name);
    t.deepEqual(c.optimizer, { lr: 0.1, momentum: 0.9, weightDecay: 5e-4, nesterov: true, milestones: [], gamma: 0.1, schedule: 'cosine' }, name);
    t.deepEqual(c.augment, { randomCropPadding: 4, horizontalFlip: true }, name);
    t.like(c.eval, { epsilon: 0.031, stepSize: 0.007, steps: 20, randomStart: false, maxSamples: 500 }, name);
    // The core reads RST's imported file from the data folder's rst/.
    const native = toNativeConfig(resolveConfig({ preset: name, overrides: [{ dataset: { dataDir: '/data' } }] }), 10, '/tmp/out');
    t.deepEqual(native.extra, { file: path.join('/data', 'rst', 'ti_500K_pseudo_labeled.stextra'), fraction: 0.5 }, name);
    t.is(native.optimizer.schedule, 'cosine');
  }
  // A cosine schedule with milestones is a contradiction, named.
  t.deepEqual(issuesOf(() => resolveConfig({ preset: 'cifar10-resnet18-st', overrides: [{ optimizer: { schedule: 'cosine' } }] })), [
    'optimizer.milestones: the cosine schedule takes no milestones; expected [], got [79,99]',
  ]);
  t.deepEqual(issuesOf(() => resolveConfig({ overrides: [{ dataset: { extra: { file: null, fraction: 1 } } }] })).length, 1);
  t.is(resolveConfig().dataset.extra, null);
});

test('the quick MNIST presets of every method share the default job and differ only in the method', (t) => {
  const base = resolveConfig({ preset: 'mnist-st-quick' });
  const ball = { epsilon: 0.2, stepSize: 0.04, steps: 5 };
  const want: Record<string, unknown> = {
    'mnist-trades-quick': { name: 'trades', beta: 6, ...ball },
    'mnist-mart-quick': { name: 'mart', beta: 5, ...ball },
    'mnist-collaborative-quick': { name: 'collaborative', beta: 3, ...ball },
    'mnist-trades-awp-quick': { name: 'awp', inner: { name: 'trades', beta: 6, ...ball }, gamma: 5e-3, warmup: 0 },
    'mnist-st-awp-quick': { name: 'awp', inner: base.method, gamma: 5e-3, warmup: 0 },
  };
  for (const [name, method] of Object.entries(want)) {
    const c = resolveConfig({ preset: name });
    t.deepEqual(c.method, method, name);
    t.deepEqual({ ...c, method: base.method }, base, name);
  }
});

test('bad values name their dotted path, what was expected and what was given', (t) => {
  const issues = issuesOf(() => resolveConfig({ overrides: [{ method: { beta: 'six' } }, { eval: { steps: -1 } }] }));
  t.deepEqual(issues, ['method.beta: expected a number, got "six"', 'eval.steps: expected a number >= 0, got -1']);
  const one = (o: Record<string, unknown>) => issuesOf(() => resolveConfig({ overrides: [o] }));
  t.deepEqual(one({ method: { steps: 2.5 } }), ['method.steps: expected an integer, got 2.5']);
  t.deepEqual(one({ optimizer: { lr: 0 } }), ['optimizer.lr: expected a number > 0, got 0']);
  t.deepEqual(one({ optimizer: { momentum: 1 } }), ['optimizer.momentum: expected a number < 1, got 1']);
  t.deepEqual(one({ device: 'gpu' }), ['device: expected one of "auto", "cpu", "cuda", got "gpu"']);
  t.deepEqual(one({ method: { name: 'fgsm_at' } }), [
    'method.name: expected one of "st", "natural", "pgd_at", "trades", "mart", "collaborative", "awp", got "fgsm_at"',
  ]);
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

test('unknown presets point to the closest name and the list, not all names on one line', (t) => {
  const [issue] = issuesOf(() => resolveConfig({ preset: 'mnist-fast' }));
  t.regex(issue!, /^preset: unknown preset "mnist-fast"; `st-native presets` lists all \d+$/);
  const [close] = issuesOf(() => resolveConfig({ preset: 'cifar10-resnet18-sT' }));
  t.regex(close!, /^preset: unknown preset "cifar10-resnet18-sT" \(did you mean "cifar10-resnet18-st"\?\)/);
});

test('switching method replaces the method instead of merging fields into it', (t) => {
  const cfg = resolveConfig({ overrides: [{ method: { name: 'natural' } }] });
  t.deepEqual(cfg.method, { name: 'natural' });
  const st = resolveConfig({ overrides: [{ method: { beta: 6 } }] });
  t.is(st.method.name === 'st' ? st.method.beta : -1, 6);
});

test('switching method on a preset keeps the shared attack and takes the new method\'s defaults', (t) => {
  const st = resolveConfig({}).method as { epsilon: number; stepSize: number; steps: number };
  const trades = resolveConfig({ overrides: [{ method: { name: 'trades' } }] });
  t.deepEqual(trades.method, { name: 'trades', beta: 6, epsilon: st.epsilon, stepSize: st.stepSize, steps: st.steps });
  t.like(resolveConfig({ overrides: [{ method: { name: 'mart', beta: 2 } }] }).method, { name: 'mart', beta: 2, epsilon: st.epsilon });
  t.like(resolveConfig({ preset: 'mnist-trades-quick', overrides: [{ method: { name: 'st' } }] }).method, { name: 'st', reg: 'symmkl', beta: 6, branches: 'batched', epsilon: 0.2, steps: 5 });
  t.deepEqual(resolveConfig({ overrides: [{ method: { name: 'natural' } }] }).method, { name: 'natural' });
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

test('ema: null by default, defaults filled in, carried to the native config', (t) => {
  t.is(resolveConfig({ overrides: [] }).ema, null);
  const cfg = resolveConfig({ overrides: [{ ema: {} }] });
  t.deepEqual(cfg.ema, { decay: 0.999, warmupSteps: 0, evalWith: 'ema' });
  const set = resolveConfig({ overrides: [{ ema: { decay: 0.99, warmupSteps: 100, evalWith: 'raw' } }] });
  t.deepEqual(toNativeConfig(set, 10, 'runs/x/checkpoints').ema, { decay: 0.99, warmupSteps: 100, evalWith: 'raw' });
  t.is(toNativeConfig(resolveConfig({ overrides: [] }), 10, 'o').ema, null);
  // A config written before `ema` existed (no key at all) still parses.
  const { ema: _dropped, ...old } = baseConfig;
  t.is(resolveConfig({ overrides: [old] }).ema, null);
});

test('ema: out-of-range or unknown fields are refused with their paths', (t) => {
  const issue = (ema: unknown) => issuesOf(() => resolveConfig({ overrides: [{ ema }] }));
  for (const decay of [0, 1, -0.5, 1.5]) t.regex(issue({ decay })[0]!, /^ema\.decay: /, String(decay));
  t.regex(issue({ warmupSteps: -1 })[0]!, /^ema\.warmupSteps: /);
  t.regex(issue({ warmupSteps: 1.5 })[0]!, /^ema\.warmupSteps: /);
  t.regex(issue({ evalWith: 'best' })[0]!, /^ema\.evalWith: /);
  t.regex(issue({ decay: 0.9, decya: 0.9 }).join('\n'), /ema/);
  t.regex(issue('yes')[0]!, /^ema: /);
});

// --- Issue 5: nothing bad is accepted -------------------------------------------

const tmp = mkdtempSync(path.join(tmpdir(), 'st-native-config-'));
const RESERVED = 'reserved key (__proto__, constructor and prototype are never config fields)';

/** Issues of resolving these overrides on the default preset. */
function resolveIssues(...overrides: unknown[]): string[] {
  return issuesOf(() => resolveConfig({ overrides }));
}

/** Issues of a rejected promise (the public API rejects rather than throws). */
async function rejectedIssues(p: Promise<unknown>): Promise<string[]> {
  try {
    await p;
  } catch (e) {
    if (e instanceof ConfigError) return e.issues.map((i) => `${i.path}: ${i.message}`);
    throw e;
  }
  throw new Error('expected a ConfigError');
}

/** `{a:{a:...{a:leaf}}}` with `depth` keys, built without recursion. */
function nested(depth: number, leaf: unknown, key = 'a'): unknown {
  let v = leaf;
  for (let i = 0; i < depth; i++) v = { [key]: v };
  return v;
}

test('prototype keys are rejected at any depth, named by their path', (t) => {
  t.deepEqual(resolveIssues(JSON.parse('{"optimizer":{"__proto__":{"lr":5}}}')), [`optimizer.__proto__: ${RESERVED}`]);
  t.deepEqual(resolveIssues(JSON.parse('{"__proto__":{"epochs":5}}')), [`__proto__: ${RESERVED}`]);
  t.deepEqual(resolveIssues({ constructor: { name: 'x' } }), [`constructor: ${RESERVED}`]);
  t.deepEqual(resolveIssues({ method: { prototype: 1 } }), [`method.prototype: ${RESERVED}`]);
  t.deepEqual(resolveIssues({ optimizer: { milestones: [1, JSON.parse('{"__proto__":1}')] } }), [
    `optimizer.milestones.1.__proto__: ${RESERVED}`,
  ]);
  // An object literal's `__proto__` swaps the prototype instead of adding a key: reported the same way.
  t.deepEqual(resolveIssues({ optimizer: { __proto__: { lr: 5 } } }), [`optimizer.__proto__: ${RESERVED}`]);
  t.deepEqual(resolveIssues({ __proto__: { epochs: 5 } }), [`__proto__: ${RESERVED}`]);
  t.is(({} as Record<string, unknown>)['lr'], undefined, 'Object.prototype is untouched');
});

test('a prototype key fails the same way whether other overrides follow it or not', (t) => {
  const bad = JSON.parse('{"optimizer":{"__proto__":{"lr":5}}}') as unknown;
  const alone = resolveIssues(bad);
  t.deepEqual(resolveIssues(bad, { epochs: 2 }), alone);
  t.deepEqual(resolveIssues({ epochs: 2 }, bad), alone);
  t.deepEqual(resolveIssues(bad, JSON.parse('{"optimizer":{"lr":0.1}}')), alone);
  t.throws(() => mergeConfig(baseConfig, bad), { instanceOf: ConfigError, message: /^optimizer\.__proto__: reserved key/ });
});

test('prototype keys are rejected in --set keys, --set values and config files', (t) => {
  t.throws(() => parseSetArgument('__proto__.x=1'), { instanceOf: ConfigError, message: `__proto__: ${RESERVED}` });
  t.throws(() => parseSetArgument('optimizer.constructor=1'), { instanceOf: ConfigError, message: `optimizer.constructor: ${RESERVED}` });
  t.throws(() => parseSetArgument('optimizer.prototype.lr=1'), { instanceOf: ConfigError, message: `optimizer.prototype: ${RESERVED}` });
  t.throws(() => parseSetArgument('optimizer={"__proto__":{"lr":5}}'), { instanceOf: ConfigError, message: `optimizer.__proto__: ${RESERVED}` });
  const file = path.join(tmp, 'proto.json');
  writeFileSync(file, '{"epochs": 2, "method": {"__proto__": {"beta": 100}}}');
  t.throws(() => overridesFrom({ config: file, set: [], json: false }).map((o) => resolveConfig({ overrides: [o] })), {
    instanceOf: ConfigError,
    message: `method.__proto__: ${RESERVED}`,
  });
  t.is(({} as Record<string, unknown>)['x'], undefined, 'Object.prototype is untouched');
});

test('overrides nested too deep are a ConfigError naming the prefix, never a stack overflow', (t) => {
  const limitPath = Array.from({ length: MAX_OVERRIDE_DEPTH }, () => 'a').join('.');
  const tooDeep = `${limitPath}: nested more than ${MAX_OVERRIDE_DEPTH} levels deep`;
  // 16 keys is allowed (then an unknown field); 17 is not.
  t.deepEqual(resolveIssues(nested(MAX_OVERRIDE_DEPTH, 1)), ['a: unknown field']);
  t.deepEqual(resolveIssues(nested(MAX_OVERRIDE_DEPTH + 1, 1)), [tooDeep]);
  // 5,000 and 100,000 levels, as JSON.parse builds them from a file: a ConfigError, not a RangeError.
  for (const depth of [5_000, 100_000]) {
    const json = '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);
    t.deepEqual(resolveIssues(JSON.parse(json)), [tooDeep], String(depth));
  }
  const file = path.join(tmp, 'deep.json');
  writeFileSync(file, '{"optimizer":{"milestones":' + '['.repeat(5_000) + ']'.repeat(5_000) + '}}');
  const issues = issuesOf(() => resolveConfig({ overrides: overridesFrom({ config: file, set: [], json: false }) }));
  t.deepEqual(issues, [`optimizer.milestones.${Array.from({ length: MAX_OVERRIDE_DEPTH - 2 }, () => '0').join('.')}: nested more than 16 levels deep`]);
  t.deepEqual(resolveIssues({ optimizer: { milestones: new Array<number>(20_000).fill(1) } }), [
    'optimizer.milestones: expected at most 10000 items, got 20000',
  ]);
});

test('--set keys with more than 16 segments are a ConfigError', (t) => {
  const keys = (n: number) => Array.from({ length: n }, (_, i) => `k${i}`).join('.');
  t.notThrows(() => parseSetArgument(`${keys(MAX_OVERRIDE_DEPTH)}=1`));
  t.throws(() => parseSetArgument(`${keys(MAX_OVERRIDE_DEPTH + 1)}=1`), {
    instanceOf: ConfigError,
    message: `${keys(MAX_OVERRIDE_DEPTH)}: nested more than 16 levels deep`,
  });
  t.throws(() => parseSetArgument(`${keys(50_000)}=1`), { instanceOf: ConfigError, message: /nested more than 16 levels deep$/ });
  t.throws(() => parseSetArgument(`a=${'['.repeat(5_000)}${']'.repeat(5_000)}`), { instanceOf: ConfigError, message: /^a\.0\.0.*nested more/ });
});

test('overrides that are not plain JSON data are rejected with their path', (t) => {
  const plain = 'expected plain JSON data (objects, arrays, strings, numbers, true, false, null)';
  t.deepEqual(resolveIssues({ optimizer: new Date(0) }), [`optimizer: ${plain}, got a Date`]);
  t.deepEqual(resolveIssues({ eval: new Map() }), [`eval: ${plain}, got a Map`]);
  t.deepEqual(resolveIssues({ epochs: new Number(3) }), [`epochs: ${plain}, got a Number`]);
  class Options {
    epochs = 3;
  }
  t.deepEqual(resolveIssues(new Options()), [`: ${plain}, got an instance of a class`]);
  const getter = Object.defineProperty({}, 'epochs', { get: () => 3, enumerable: true });
  t.deepEqual(resolveIssues(getter), ['epochs: expected a plain value, got a getter or setter']);
  t.deepEqual(resolveIssues(42), [': expected a config object, got 42']);
  t.deepEqual(resolveIssues([{ epochs: 3 }]), [': expected a config object, got [{"epochs":3}]']);
  t.deepEqual(resolveIssues(10n), [': expected a config object, got 10n']);
  // A null-prototype object (Object.create(null), some parsers) is plain data.
  t.is(resolveConfig({ overrides: [Object.assign(Object.create(null) as object, { epochs: 4 })] }).epochs, 4);
  t.throws(() => resolveConfig({ overrides: 'epochs=3' as never }), { instanceOf: ConfigError, message: /^overrides: expected an array/ });
  t.throws(() => resolveConfig({ preset: 3 as never }), { instanceOf: ConfigError, message: 'preset: expected a string, got 3' });
});

test('negative zero becomes zero, as JSON and the native core would read it', (t) => {
  const cfg = resolveConfig({ overrides: [{ seed: -0, optimizer: { weightDecay: -0 } }] });
  t.true(Object.is(cfg.seed, 0));
  t.true(Object.is(cfg.optimizer.weightDecay, 0));
});

test('every number has a sane bound, named by its path', (t) => {
  const cores = availableParallelism();
  const cases: [Record<string, unknown>, string][] = [
    [{ optimizer: { lr: 11 } }, 'optimizer.lr: expected a number <= 10, got 11'],
    [{ optimizer: { lr: Infinity } }, 'optimizer.lr: expected a number, got Infinity'],
    [{ optimizer: { weightDecay: 1.5 } }, 'optimizer.weightDecay: expected a number <= 1, got 1.5'],
    [{ optimizer: { weightDecay: -1 } }, 'optimizer.weightDecay: expected a number >= 0, got -1'],
    [{ optimizer: { gamma: 0 } }, 'optimizer.gamma: expected a number > 0, got 0'],
    [{ optimizer: { gamma: 10.5 } }, 'optimizer.gamma: expected a number <= 10, got 10.5'],
    [{ optimizer: { milestones: [5, 100_001] } }, 'optimizer.milestones.1: expected a number <= 100000, got 100001'],
    [{ method: { beta: 1001 } }, 'method.beta: expected a number <= 1000, got 1001'],
    [{ method: { beta: -1 } }, 'method.beta: expected a number >= 0, got -1'],
    [{ method: { stepSize: 1.5 } }, 'method.stepSize: expected a number <= 1, got 1.5'],
    [{ method: { name: 'pgd_at', epsilon: 0.1, stepSize: 2, steps: 3 } }, 'method.stepSize: expected a number <= 1, got 2'],
    [{ eval: { stepSize: 2 } }, 'eval.stepSize: expected a number <= 1, got 2'],
    [{ epochs: 100_001 }, 'epochs: expected a number <= 100000, got 100001'],
    [{ batchSize: 65_537 }, 'batchSize: expected a number <= 65536, got 65537'],
    [{ eval: { batchSize: 65_537 } }, 'eval.batchSize: expected a number <= 65536, got 65537'],
    [{ eval: { maxSamples: 10_000_001 } }, 'eval.maxSamples: expected a number <= 10000000, got 10000001'],
    [{ augment: { randomCropPadding: 65 } }, 'augment.randomCropPadding: expected a number <= 64, got 65'],
    [{ augment: { randomCropPadding: -1 } }, 'augment.randomCropPadding: expected a number >= 0, got -1'],
    [{ seed: 2 ** 53 }, 'seed: expected a number <= 9007199254740991, got 9007199254740992'],
    [{ seed: -(2 ** 53) }, 'seed: expected a number >= -9007199254740991, got -9007199254740992'],
    [{ seed: 1e300 }, 'seed: expected a number <= 9007199254740991, got 1e+300'],
    [{ dataset: { trainSize: 10_000_001 } }, 'dataset.trainSize: expected a number <= 10000000, got 10000001'],
    [{ dataset: { testSize: 10_000_001 } }, 'dataset.testSize: expected a number <= 10000000, got 10000001'],
    [{ dataset: { validationSize: 10_000_001 } }, 'dataset.validationSize: expected a number <= 10000000, got 10000001'],
    [{ threads: 0 }, 'threads: expected a number >= 1, got 0'],
    [{ threads: 1.5 }, 'threads: expected an integer, got 1.5'],
    [
      { threads: cores + 1 },
      `threads: expected a number <= ${cores} (this machine has ${cores} core${cores === 1 ? '' : 's'}), got ${cores + 1}`,
    ],
  ];
  for (const [override, expected] of cases) t.deepEqual(resolveIssues(override), [expected], JSON.stringify(override));
  const [tooMany] = resolveIssues({ optimizer: { milestones: Array.from({ length: 101 }, (_, i) => i + 1) } });
  t.regex(tooMany!, /^optimizer\.milestones: expected at most 100 items, got \[1,2,3,/);
});

test('the bounds themselves are accepted', (t) => {
  const cfg = resolveConfig({
    overrides: [
      {
        method: { beta: 1000, stepSize: 1 },
        optimizer: { lr: 10, weightDecay: 1, gamma: 10, milestones: Array.from({ length: 100 }, () => 100_000) },
        epochs: 100_000,
        batchSize: 65_536,
        eval: { stepSize: 1, batchSize: 65_536, maxSamples: 10_000_000 },
        augment: { randomCropPadding: 64 },
        seed: Number.MIN_SAFE_INTEGER,
        dataset: { trainSize: 10_000_000, testSize: 10_000_000, validationSize: 10_000_000 },
        threads: availableParallelism(),
        runsDir: 'r'.repeat(4096),
        runName: 'n'.repeat(200),
        initCheckpoint: 'c'.repeat(4096),
      },
    ],
  });
  t.is(cfg.seed, Number.MIN_SAFE_INTEGER);
  t.is(resolveConfig({ overrides: [{ seed: Number.MAX_SAFE_INTEGER, runName: '.hidden..name' }] }).runName, '.hidden..name');
});

test('paths and the run name are bounded and cannot point elsewhere', (t) => {
  const long = 'x'.repeat(4097);
  t.regex(resolveIssues({ runsDir: long })[0]!, /^runsDir: expected at most 4096 characters, got "x{119}\.\.\. \(4099 characters\)$/);
  t.regex(resolveIssues({ initCheckpoint: long })[0]!, /^initCheckpoint: expected at most 4096 characters/);
  t.deepEqual(resolveIssues({ initCheckpoint: '' }), ['initCheckpoint: expected at least 1 character, got ""']);
  t.deepEqual(resolveIssues({ runsDir: 'runs\0x' }), ['runsDir: expected no NUL character, got "runs\\u0000x"']);
  t.deepEqual(resolveIssues({ initCheckpoint: 'a\0' }), ['initCheckpoint: expected no NUL character, got "a\\u0000"']);
  for (const name of ['.', '..', '....']) {
    t.deepEqual(resolveIssues({ runName: name }), [`runName: expected a name that is not only dots, got "${name}"`], name);
  }
  t.deepEqual(resolveIssues({ runName: 'n'.repeat(201) }), [`runName: expected at most 200 characters, got "${'n'.repeat(119)}... (203 characters)`]);
  t.true(resolveIssues({ runName: '' }).includes('runName: expected at least 1 character, got ""'));
  t.deepEqual(resolveIssues({ runName: '../up' }), ['runName: expected letters, digits, ".", "_" or "-" only, got "../up"']);
});

test('readJsonFile reads a small regular JSON file, with or without a byte order mark', (t) => {
  const file = path.join(tmp, 'ok.json');
  writeFileSync(file, '{"epochs": 2}');
  t.deepEqual(readJsonFile(file, 'f'), { epochs: 2 });
  writeFileSync(file, '\uFEFF{"epochs": 3}');
  t.deepEqual(readJsonFile(file, 'f'), { epochs: 3 });
  writeFileSync(file, 'x'.repeat(100_000).replace(/^x/, '"').replace(/x$/, '"'));
  t.is((readJsonFile(file, 'f') as string).length, 99_998);
});

test('readJsonFile refuses what is not a small regular file, naming it by its label', (t) => {
  const issue = (file: string, maxBytes?: number) => issuesOf(() => readJsonFile(file, `--config ${file}`, maxBytes))[0]!;
  const dir = path.join(tmp, 'a-dir');
  mkdirSync(dir, { recursive: true });
  t.is(issue(dir), `--config ${dir}: not a regular file (a directory)`);
  if (existsSync('/dev/zero')) t.is(issue('/dev/zero'), '--config /dev/zero: not a regular file (a character device)');
  const big = path.join(tmp, 'big.json');
  writeFileSync(big, '[1,2,3,4,5]');
  t.is(issue(big, 10), `--config ${big}: too large: 11 bytes; the limit is 10 bytes`);
  t.deepEqual(readJsonFile(big, 'f', 11), [1, 2, 3, 4, 5]);
  const bad = path.join(tmp, 'bad.json');
  writeFileSync(bad, '{"epochs": ');
  t.regex(issue(bad), /^--config .*bad\.json: not valid JSON \(/);
  writeFileSync(bad, Buffer.from([0x7b, 0xff, 0x7d]));
  t.is(issue(bad), `--config ${bad}: not valid UTF-8 text`);
  t.regex(issue(path.join(tmp, 'missing.json')), /missing\.json: cannot read a JSON object \(ENOENT/);
});

test('readJsonFile never blocks on a FIFO', (t) => {
  if (process.platform === 'win32') return t.pass('no FIFOs');
  const fifo = path.join(tmp, 'fifo.json');
  execFileSync('mkfifo', [fifo]);
  // Without the stat-first check this read would wait forever for a writer.
  t.deepEqual(issuesOf(() => readJsonFile(fifo, `--config ${fifo}`)), [`--config ${fifo}: not a regular file (a FIFO)`]);
  t.throws(() => overridesFrom({ config: fifo, set: [], json: false }), { instanceOf: ConfigError, message: /not a regular file \(a FIFO\)/ });
});

test('readJsonFile refuses a socket', async (t) => {
  if (process.platform === 'win32') return t.pass('no Unix sockets');
  const sock = path.join(tmp, 'sock.json');
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(sock, resolve));
  try {
    t.deepEqual(issuesOf(() => readJsonFile(sock, 'sock')), ['sock: not a regular file (a socket)']);
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
});

test('a --config file must hold a JSON object', (t) => {
  const file = path.join(tmp, 'array.json');
  writeFileSync(file, '[1]');
  t.throws(() => overridesFrom({ config: file, set: [], json: false }), {
    instanceOf: ConfigError,
    message: `--config ${file}: expected a JSON object, got [1]`,
  });
  writeFileSync(file, '{"epochs": 2}');
  t.deepEqual(overridesFrom({ config: file, set: ['seed=3'], json: false }), [{ epochs: 2 }, { seed: 3 }]);
});

test('train() rejects bad options with a ConfigError naming the option', async (t) => {
  const call = (options: unknown) => rejectedIssues(train(options as never));
  t.deepEqual(await call(42), ['options: expected a plain object, got 42']);
  t.deepEqual(await call('x'), ['options: expected a plain object, got "x"']);
  t.deepEqual(await call([]), ['options: expected a plain object, got []']);
  t.deepEqual(await call(null), ['options: expected a plain object, got null']);
  t.deepEqual(await call({ onEvent: 5 }), ['options.onEvent: expected a function, got 5']);
  t.deepEqual(await call({ signal: {} }), ['options.signal: expected an AbortSignal, got {}']);
  t.deepEqual(await call({ preset: 3 }), ['options.preset: expected a string, got 3']);
  t.deepEqual(await call({ overrides: 5 }), ['options.overrides: expected a config object or an array of config objects, got 5']);
  t.deepEqual(await call({ overrides: [{}, 'epochs=3'] }), [
    'options.overrides: expected a config object or an array of config objects, got [{},"epochs=3"]',
  ]);
  t.deepEqual(await call({ overides: {} }), ['options.overides: unknown field']);
  // Options pass, the config does not: still rejected before any native work.
  t.deepEqual(await call({ overrides: { optimizer: { __proto__: { lr: 5 } } } }), [`optimizer.__proto__: ${RESERVED}`]);
  t.deepEqual(await call({ overrides: [{ epochs: 0 }] }), ['epochs: expected a number >= 1, got 0']);
});

test('parseTrainOptions passes good options through unchanged', (t) => {
  const onEvent = () => {};
  const { signal } = new AbortController();
  const overrides = [{ epochs: 2 }];
  t.deepEqual(parseTrainOptions(undefined), {});
  const parsed = parseTrainOptions({ preset: 'mnist-st-quick', overrides, onEvent, signal });
  t.is(parsed.onEvent, onEvent);
  t.is(parsed.signal, signal);
  t.is(parsed.overrides, overrides);
});

test('evaluate() rejects bad options with a ConfigError naming the option', async (t) => {
  const call = (options: unknown) => rejectedIssues(evaluate(options as never));
  t.deepEqual(await call(42), ['options: expected a plain object, got 42']);
  t.deepEqual(await call(undefined), ['options: expected a plain object, got nothing']);
  t.deepEqual(await call({}), ['options.runDir: expected a string, got nothing']);
  t.deepEqual(await call({ runDir: '' }), ['options.runDir: expected at least 1 character, got ""']);
  t.deepEqual(await call({ runDir: 'r', checkpoint: 'first' }), [
    'options.checkpoint: expected one of "best", "last", "interrupted", "ema-best", "ema-last", got "first"',
  ]);
  t.deepEqual(await call({ runDir: 'r', eval: 5 }), ['options.eval: expected a plain object, got 5']);
  t.deepEqual(await call({ runDir: 'r', eval: { steps: -1 } }), ['options.eval.steps: expected a number >= 0, got -1']);
  t.deepEqual(await call({ runDir: 'r', eval: { stpes: 1 } }), ['options.eval.stpes: unknown field']);
  t.deepEqual(await call({ runDir: 'r', device: 'gpu' }), ['options.device: expected one of "auto", "cpu", "cuda", got "gpu"']);
  t.deepEqual(parseEvaluateOptions({ runDir: 'r', eval: { steps: 2 } }), { runDir: 'r', eval: { steps: 2 } });
});
