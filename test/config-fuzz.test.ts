/**
 * Property-based checks of the config layer: whatever a user or a caller
 * passes, the outcome is either a valid config that survives the trip to the
 * native core, or a ConfigError with a message for every issue. Never another
 * exception (TypeError, RangeError from deep recursion, ...).
 *
 * Fixed seed so CI is reproducible; on failure fast-check prints the seed and
 * the shrunk counterexample.
 */
import test from 'ava';
import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import fc from 'fast-check';
import {
  ConfigError,
  parseSetArgument,
  resolveConfig,
  runConfigSchema,
  toNativeConfig,
  type RunConfig,
} from '../ts/config/index.js';

const SEED = 0x5eed_c0f1;
const RUNS = 300;

/** Runs `fn`; returns the config it accepted or undefined for a well-formed ConfigError, and rethrows anything else. */
function outcome(fn: () => RunConfig): RunConfig | undefined {
  try {
    return fn();
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    assert.ok(e.issues.length > 0, 'a ConfigError without issues');
    for (const issue of e.issues) {
      assert.equal(typeof issue.path, 'string');
      assert.ok(typeof issue.message === 'string' && issue.message.length > 0, `empty message in ${JSON.stringify(e.issues)}`);
    }
    return undefined;
  }
}

/** An accepted config re-parses to itself and reaches the core unchanged through JSON (no NaN, Infinity, -0). */
function checkAccepted(config: RunConfig): void {
  assert.deepStrictEqual(runConfigSchema.parse(config), config);
  const native = toNativeConfig(config, 10, '/tmp/x');
  assert.deepStrictEqual(JSON.parse(JSON.stringify(native)), native);
}

/**
 * Whether a value holds a reserved key or a key path longer than 16 (an
 * independent, naive oracle for what resolveConfig must reject). Own keys
 * only, and a swapped prototype counts as a `__proto__` key.
 */
function mustBeRejected(value: unknown): boolean {
  const stack: [unknown, number][] = [[value, 0]];
  for (let item = stack.pop(); item; item = stack.pop()) {
    const [v, depth] = item;
    if (v === null || typeof v !== 'object') continue;
    const proto: unknown = Object.getPrototypeOf(v);
    if (!Array.isArray(v) && proto !== Object.prototype && proto !== null) return true;
    const keys = Object.keys(v);
    if (keys.length > 0 && depth >= 16) return true;
    for (const k of keys) {
      if (['__proto__', 'constructor', 'prototype'].includes(k)) return true;
      stack.push([(v as Record<string, unknown>)[k], depth + 1]);
    }
  }
  return false;
}

// --- Arbitraries --------------------------------------------------------------

const reservedKey = fc.constantFrom('__proto__', 'constructor', 'prototype');
const knownKey = fc.constantFrom(
  ...['model', 'dataset', 'method', 'epochs', 'batchSize', 'optimizer', 'augment', 'eval', 'seed', 'device', 'threads'],
  ...['runsDir', 'runName', 'initCheckpoint', 'name', 'reg', 'beta', 'epsilon', 'stepSize', 'steps', 'branches', 'lr'],
  ...['momentum', 'weightDecay', 'nesterov', 'milestones', 'gamma', 'randomCropPadding', 'horizontalFlip', 'trainSize'],
  ...['randomStart', 'maxSamples', 'testSize', 'validationSize'],
);
const key = fc.oneof({ arbitrary: knownKey, weight: 4 }, { arbitrary: reservedKey, weight: 1 }, { arbitrary: fc.string({ maxLength: 6 }), weight: 1 });

const edgeNumber = fc.constantFrom(
  ...[0, -0, 1, -1, 0.5, 1.5, 10, 64, 65, 100, 101, 1000, 65_536, 100_000, 10_000_000, 2 ** 53 - 1, 2 ** 53, -(2 ** 53)],
  ...[Number.NaN, Infinity, -Infinity, Number.MAX_VALUE, Number.MIN_VALUE, 1e308, -1e308, 1e-300],
);
const number = fc.oneof(edgeNumber, fc.double(), fc.integer());
const enumString = fc.constantFrom(
  ...['st', 'natural', 'pgd_at', 'symmkl', 'js', 'l2', 'batched', 'separate', 'auto', 'cpu', 'cuda'],
  ...['small_cnn', 'resnet18', 'mnist-embedded', 'cifar10', '.', '..', 'runs', 'a\0b'],
);
const string = fc.oneof(enumString, fc.string({ maxLength: 12, unit: 'binary' }), fc.constant('y'.repeat(5_000)));
const scalar = fc.oneof(number, string, fc.boolean(), fc.constant(null), fc.constant(undefined));

/** An object with an own key `k` (even `__proto__`), as JSON.parse would build it. */
function withOwnKey(k: string, v: unknown): Record<string, unknown> {
  return Object.defineProperty({}, k, { value: v, enumerable: true, writable: true, configurable: true });
}

/** Objects `depth` levels deep along `keys`, built iteratively; some are far past the depth limit. */
const deepNest = fc
  .tuple(fc.oneof(fc.integer({ min: 1, max: 40 }), fc.constantFrom(5_000, 20_000)), fc.array(key, { minLength: 1, maxLength: 4 }), scalar)
  .map(([depth, keys, leaf]) => {
    let v: unknown = leaf;
    for (let i = depth - 1; i >= 0; i--) v = withOwnKey(keys[i % keys.length]!, v);
    return v;
  });

/** Arbitrary JSON-ish trees over config-like and reserved keys. */
const tree = fc.letrec<{ node: unknown }>((tie) => ({
  node: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    scalar,
    fc.array(tie('node'), { maxLength: 4 }),
    fc.uniqueArray(fc.tuple(key, tie('node')), { maxLength: 5, selector: ([k]) => k }).map((entries) => {
      const o: Record<string, unknown> = {};
      for (const [k, v] of entries) Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
      return o;
    }),
  ),
})).node;

/** Anything at all, including Maps, Dates, boxed values, typed and sparse arrays, null prototypes, bigints. */
const anything = fc.anything({
  key,
  maxDepth: 4,
  withBoxedValues: true,
  withMap: true,
  withSet: true,
  withObjectString: true,
  withNullPrototype: true,
  withBigInt: true,
  withDate: true,
  withTypedArray: true,
  withSparseArray: true,
  stringUnit: 'binary',
});

const partial = <T>(model: { [K in keyof T]: fc.Arbitrary<T[K]> }) => fc.record(model, { requiredKeys: [] });
const unitDouble = fc.double({ min: 0, max: 1, noNaN: true });
const imageCount = fc.oneof(fc.constant(null), fc.integer({ min: 1, max: 10_000_000 }));
const pathLike = fc.string({ minLength: 1, maxLength: 40, unit: 'binary' });

/**
 * Config-shaped overrides whose fields are valid except, with odds
 * wild:100 per field, an arbitrary scalar: low odds give mostly accepted
 * configs, higher odds probe each field's checks.
 */
function configLike(wild: number) {
  const near = <T>(valid: fc.Arbitrary<T>): fc.Arbitrary<unknown> =>
    fc.oneof({ arbitrary: valid, weight: 100 }, { arbitrary: scalar, weight: wild });
  return partial({
    model: near(fc.constantFrom('small_cnn', 'resnet18')),
    dataset: near(partial({ name: near(fc.constant('mnist-embedded')), trainSize: near(imageCount), testSize: near(imageCount), validationSize: near(imageCount) })),
    method: near(
      fc.oneof(
        partial({ beta: near(fc.double({ min: 0, max: 1000, noNaN: true })), stepSize: near(unitDouble), steps: near(fc.integer({ min: 0, max: 10_000 })) }),
        fc.constant({ name: 'natural' }),
        fc.record({ name: fc.constant('pgd_at'), epsilon: near(unitDouble), stepSize: near(unitDouble), steps: near(fc.integer({ min: 0, max: 20 })) }),
      ),
    ),
    epochs: near(fc.integer({ min: 1, max: 100_000 })),
    batchSize: near(fc.integer({ min: 1, max: 65_536 })),
    optimizer: near(
      partial({
        lr: near(fc.double({ min: 0, max: 10, minExcluded: true, noNaN: true })),
        momentum: near(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true })),
        weightDecay: near(unitDouble),
        milestones: near(fc.array(fc.integer({ min: 1, max: 100_000 }), { maxLength: 100 })),
        gamma: near(fc.double({ min: 0, max: 10, minExcluded: true, noNaN: true })),
      }),
    ),
    augment: near(partial({ randomCropPadding: near(fc.integer({ min: 0, max: 64 })), horizontalFlip: near(fc.boolean()) })),
    eval: near(partial({ epsilon: near(unitDouble), stepSize: near(unitDouble), batchSize: near(fc.integer({ min: 1, max: 65_536 })), maxSamples: near(imageCount) })),
    seed: near(fc.oneof(fc.maxSafeInteger(), fc.constant(-0))),
    device: near(fc.constantFrom('auto', 'cpu', 'cuda')),
    threads: near(fc.oneof(fc.constant(null), fc.integer({ min: 1, max: availableParallelism() }))),
    runsDir: near(pathLike),
    runName: near(fc.oneof(fc.constant(null), fc.stringMatching(/^[A-Za-z0-9._-]{1,30}$/))),
    initCheckpoint: near(fc.oneof(fc.constant(null), pathLike)),
  });
}

/** A reserved key planted at a random depth of a config-like override. */
const planted = fc.tuple(fc.array(knownKey, { maxLength: 3 }), reservedKey, scalar).map(([keys, reserved, leaf]) => {
  let v: unknown = withOwnKey(reserved, leaf);
  for (let i = keys.length - 1; i >= 0; i--) v = withOwnKey(keys[i]!, v);
  return v;
});

const override = fc.oneof(configLike(8), tree, deepNest, planted, anything, fc.jsonValue());

// --- Properties ---------------------------------------------------------------

test('fuzz: any overrides give a valid config or a ConfigError with messages', (t) => {
  let accepted = 0;
  fc.assert(
    fc.property(fc.array(override, { minLength: 1, maxLength: 3 }), (overrides) => {
      const config = outcome(() => resolveConfig({ overrides }));
      if (config) {
        accepted += 1;
        assert.ok(!overrides.some(mustBeRejected), 'accepted a reserved key, a swapped prototype or too deep a nesting');
        checkAccepted(config);
      }
    }),
    { seed: SEED, numRuns: RUNS },
  );
  t.true(accepted > 0, 'some overrides were accepted');
});

test('fuzz: any --set string gives a valid config or a ConfigError with messages', (t) => {
  const path = fc.array(fc.oneof(knownKey, reservedKey, fc.string({ maxLength: 4 })), { minLength: 0, maxLength: 20 }).map((k) => k.join('.'));
  const value = fc.oneof(fc.json(), fc.string({ maxLength: 20, unit: 'binary' }), edgeNumber.map(String), fc.constant('['.repeat(3_000)));
  const setArg = fc.oneof(fc.string({ maxLength: 40, unit: 'binary' }), fc.tuple(path, value).map(([p, v]) => `${p}=${v}`));
  let outcomes = 0;
  fc.assert(
    fc.property(setArg, (arg) => {
      const config = outcome(() => resolveConfig({ overrides: [parseSetArgument(arg)] }));
      if (config) checkAccepted(config);
      outcomes += 1;
    }),
    { seed: SEED, numRuns: RUNS },
  );
  // fc.assert throws on the first counterexample; every case reached an outcome.
  t.is(outcomes, RUNS);
});

test('fuzz: every accepted config reaches the native side unchanged through JSON', (t) => {
  let accepted = 0;
  fc.assert(
    fc.property(fc.array(configLike(1), { minLength: 1, maxLength: 2 }), (overrides) => {
      const config = outcome(() => resolveConfig({ overrides }));
      if (!config) return;
      accepted += 1;
      checkAccepted(config);
    }),
    { seed: SEED, numRuns: RUNS },
  );
  // The property must not hold vacuously: most near-valid configs are accepted.
  t.true(accepted > RUNS / 2, `${accepted} of ${RUNS} accepted`);
});
