import test from 'ava';
import { ConfigError, resolveConfig, toNativeConfig } from '../ts/config/index.js';

// The precision/memoryFormat fields: defaults that keep today's numbers, the
// accepted values reaching the native config, and bad values named by path.

function issuesOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (e) {
    if (e instanceof ConfigError) return e.issues.map((i) => `${i.path}: ${i.message}`);
    throw e;
  }
  throw new Error('expected a ConfigError');
}

test('precision and memoryFormat default to f32 and contiguous, for training and evaluation', (t) => {
  const cfg = resolveConfig({});
  t.is(cfg.precision, 'f32');
  t.is(cfg.memoryFormat, 'contiguous');
  t.is(cfg.eval.precision, 'f32');
  const native = toNativeConfig(cfg, 10, 'out');
  t.is(native.precision, 'f32');
  t.is(native.memoryFormat, 'contiguous');
  t.is(native.eval.precision, 'f32');
});

test('bf16 training with channels_last and an f32 evaluation reach the native config', (t) => {
  const cfg = resolveConfig({ overrides: [{ precision: 'bf16', memoryFormat: 'channels_last', eval: { precision: 'f32' } }] });
  const native = toNativeConfig(cfg, 10, 'out');
  t.is(native.precision, 'bf16');
  t.is(native.memoryFormat, 'channels_last');
  t.is(native.eval.precision, 'f32');
  for (const p of ['f32', 'tf32', 'bf16', 'f16'] as const) t.is(resolveConfig({ overrides: [{ precision: p }] }).precision, p);
});

test('bad precision and memoryFormat values name their path and the choices', (t) => {
  t.deepEqual(issuesOf(() => resolveConfig({ overrides: [{ precision: 'fp8' }] })), [
    'precision: expected one of "f32", "tf32", "bf16", "f16", got "fp8"',
  ]);
  t.deepEqual(issuesOf(() => resolveConfig({ overrides: [{ eval: { precision: 'half' } }] })), [
    'eval.precision: expected one of "f32", "tf32", "bf16", "f16", got "half"',
  ]);
  t.deepEqual(issuesOf(() => resolveConfig({ overrides: [{ memoryFormat: 'nhwc' }] })), [
    'memoryFormat: expected one of "contiguous", "channels_last", got "nhwc"',
  ]);
});
