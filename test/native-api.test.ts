/**
 * The public API end to end on the real addon and the embedded MNIST digits.
 * Imported by package name, so the package's `exports` are exercised too.
 * Serial: each test trains, and the machine has two cores.
 */
import test from 'ava';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { ConfigError, evaluate, listModels, runtimeInfo, train, type ConfigOverrides, type TrainEvent } from 'st-native';
import { scaledCopy } from './helpers/safetensors.js';

const runsDir = mkdtempSync(path.join(tmpdir(), 'st-native-test-runs-'));

// The TrainEvent contract, checked at run time against what the core emits.
const parts = z.object({ ceAdv: z.number(), ceBenign: z.number(), ceCol: z.number(), reg: z.number() }).partial().strict();
const evalResult = { epoch: z.number().int(), split: z.enum(['validation', 'test']), cleanAcc: z.number().min(0).max(1), robustAcc: z.number().min(0).max(1), attack: z.string(), samples: z.number().int(), seconds: z.number() };
const eventSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('start'), model: z.string(), parameters: z.number(), device: z.string(), method: z.string(), trainSize: z.number(), testSize: z.number(), epochs: z.number(), stepsPerEpoch: z.number(), startEpoch: z.number(), evalEpochs: z.array(z.number().int()), finalTestSize: z.number().int().nullable() }).strict(),
  z.object({ type: z.literal('step'), epoch: z.number(), step: z.number(), stepsPerEpoch: z.number(), lr: z.number(), loss: z.number(), parts, imagesPerSec: z.number(), elapsedSec: z.number() }).strict(),
  z.object({ type: z.literal('epoch'), epoch: z.number(), loss: z.number(), parts, trainAcc: z.number(), seconds: z.number(), imagesPerSec: z.number() }).strict(),
  z.object({ type: z.literal('evalProgress'), phase: z.enum(['epoch', 'finalTest']), epoch: z.number().int(), split: z.enum(['validation', 'test']), done: z.number().int(), total: z.number().int(), elapsedSec: z.number() }).strict(),
  z.object({ type: z.literal('eval'), ...evalResult }).strict(),
  z.object({ type: z.literal('checkpoint'), epoch: z.number(), kind: z.enum(['last', 'best', 'interrupted']), path: z.string(), tied: z.boolean() }).strict(),
  z.object({ type: z.literal('done'), status: z.enum(['completed', 'cancelled']), epochsCompleted: z.number(), selectedOn: z.enum(['validation', 'test']), best: z.object(evalResult).strict().nullable(), last: z.object(evalResult).strict().nullable(), test: z.object(evalResult).strict().nullable(), lastCheckpoint: z.string().nullable(), bestCheckpoint: z.string().nullable(), seconds: z.number() }).strict(),
]);

/** The default job, smaller (`npm run compare`'s): 2,000 training digits, 2 epochs of batch 32, 500 held out, PGD-20 at eps 0.2. */
const quick = (name: string, extra: ConfigOverrides = {}): ConfigOverrides[] => [
  { dataset: { trainSize: 2000, testSize: 500 }, epochs: 2, batchSize: 32, runsDir, runName: name, device: 'cpu' },
  extra,
];

test.serial('the addon reports the libtorch it was built against', (t) => {
  const info = runtimeInfo();
  t.regex(info.libtorchVersion, /^2\.11\.0(\+|$)/);
  t.is(typeof info.cudaAvailable, 'boolean');
});

test.serial('listModels reports the reference parameter counts', (t) => {
  const byName = Object.fromEntries(listModels().map((m) => [m.name, m.parameters]));
  t.is(byName.small_cnn, 312_202);
  t.is(byName.resnet18, 11_173_962);
});

test.serial('invalid configs fail before any work, naming the field', async (t) => {
  await t.throwsAsync(train({ overrides: [...quick('never'), { method: { steps: 2.5 } }] }), {
    instanceOf: ConfigError,
    message: /method\.steps: expected an integer, got 2\.5/,
  });
  t.false(existsSync(path.join(runsDir, 'never')));
});

// The job is `npm run compare`'s (2,000 digits, 2 epochs of batch 32, PGD-20
// at eps 0.2 on 500 test digits; here evaluated after both epochs, the best
// by PGD-20). The README's comparison table, seeds 0-2, PGD-20 after the last
// epoch: ST 53.1 % (47.6-58.8), clean 91.2 % (90.2-91.8); plain CE 20.7 %
// (17.0-24.6), clean 89.7 % (87.6-91.6). The test asks for ST above 40 %, a
// lead of 15 points (the smallest measured was 23), and a baseline that has
// really trained (clean above 80 %). The former job (4,000 digits, 3 epochs:
// ST 61.6-67.0 %, plain CE 25.4-35.6 %) took 6 minutes of CI for the same claim.
test.serial('ST is far more robust than a normally trained model under the same attack', async (t) => {
  const events: TrainEvent[] = [];
  const st = await train({ overrides: quick('st'), onEvent: (e) => events.push(e) });
  const natural = await train({ overrides: quick('natural', { method: { name: 'natural' } }) });
  const stBest = st.summary.best!;
  const natBest = natural.summary.best!;
  t.log(`ST: clean ${stBest.cleanAcc}, PGD-20 ${stBest.robustAcc}; natural: clean ${natBest.cleanAcc}, PGD-20 ${natBest.robustAcc}`);
  t.true(natBest.cleanAcc > 0.8, 'the baseline must actually have trained');
  t.true(stBest.cleanAcc > 0.8);
  t.true(stBest.robustAcc > 0.4);
  t.true(stBest.robustAcc > natBest.robustAcc + 0.15);

  // Every event fits the contract; the run folder holds what it promises.
  for (const e of events) t.true(eventSchema.safeParse(e).success, JSON.stringify(e));
  t.deepEqual(events.map((e) => e.type).filter((k) => k !== 'step' && k !== 'evalProgress').slice(0, 4), ['start', 'epoch', 'eval', 'checkpoint']);
  // Each evaluation's progress reaches its total before its result.
  const evalAt = events.findIndex((e) => e.type === 'eval');
  t.like([...events.slice(0, evalAt)].reverse().find((e) => e.type === 'evalProgress'), { phase: 'epoch', epoch: 1, done: 500, total: 500 });
  const lines = readFileSync(path.join(st.runDir, 'metrics.jsonl'), 'utf8').trim().split('\n');
  t.is(lines.length, events.length);
  const summary = JSON.parse(readFileSync(path.join(st.runDir, 'summary.json'), 'utf8'));
  // The file's checkpoint paths are relative to the run folder (it can move); the API's are as written.
  t.deepEqual(summary, { ...st.summary, lastCheckpoint: path.join('checkpoints', 'last.safetensors'), bestCheckpoint: path.join('checkpoints', 'best.safetensors') });
  t.is(path.resolve(st.runDir, summary.bestCheckpoint), path.resolve(st.summary.bestCheckpoint!));
  const config = JSON.parse(readFileSync(path.join(st.runDir, 'config.json'), 'utf8'));
  t.is(config.native.method.name, 'st');
  // Where the run came from: an API call (no command line), this Node, libtorch 2.11.0.
  t.like(config.provenance, { command: null, node: process.version });
  t.regex(config.provenance.libtorch, /^2\.11\.0/);
  t.regex(config.provenance.stNative, /^\d+\.\d+\.\d+$/);
  t.true(existsSync(path.join(st.runDir, 'checkpoints', 'best.safetensors')));

  // Re-evaluating the best checkpoint reproduces the run's numbers exactly
  // (PGD's random starts are seeded per run and epoch).
  const again = await evaluate({ runDir: st.runDir, checkpoint: 'best' });
  t.deepEqual({ ...again, seconds: 0 }, { ...stBest, seconds: 0 });
});

test.serial('aborting mid-epoch stops within a step and leaves a checkpoint that loads', async (t) => {
  const ac = new AbortController();
  let stepsAfterAbort = 0;
  const { summary, runDir } = await train({
    overrides: quick('cancel', { epochs: 50 }),
    signal: ac.signal,
    onEvent: (e) => {
      if (e.type !== 'step') return;
      if (ac.signal.aborted) stepsAfterAbort += 1;
      ac.abort();
    },
  });
  t.is(summary.status, 'cancelled');
  t.is(summary.epochsCompleted, 0);
  t.true(stepsAfterAbort <= 1, `${stepsAfterAbort} steps after abort`);
  t.true(summary.lastCheckpoint!.endsWith('interrupted.safetensors'));
  const result = await evaluate({ runDir, checkpoint: 'interrupted', eval: { steps: 2, maxSamples: 50 } });
  t.is(result.samples, 50);
});

test.serial('a corrupt checkpoint and a diverging run fail with codes and lose nothing', async (t) => {
  const bad = path.join(runsDir, 'bad.safetensors');
  writeFileSync(bad, Buffer.from('not a safetensors file at all'));
  const e1 = await t.throwsAsync(train({ overrides: quick('badinit', { initCheckpoint: bad }) }));
  t.is((e1 as Error & { code?: string }).code, 'ERR_CHECKPOINT');
  t.regex(e1!.message, /bad\.safetensors: not a safetensors file/);
  // Nothing was created for a run that could not start.
  t.false(existsSync(path.join(runsDir, 'badinit')));

  // Weights at the edge of float32 (finite, so they load) diverge at the first step.
  const good = await train({ overrides: quick('good', { method: { name: 'natural' }, epochs: 1 }) });
  const huge = path.join(runsDir, 'huge.safetensors');
  scaledCopy(path.join(good.runDir, 'checkpoints', 'last.safetensors'), huge, 1e30);
  const e2 = await t.throwsAsync(
    train({ overrides: quick('nan', { method: { name: 'natural' }, optimizer: { lr: 10 }, initCheckpoint: huge }) }),
  );
  t.is((e2 as Error & { code?: string }).code, 'ERR_NONFINITE_LOSS');
  const summary = JSON.parse(readFileSync(path.join(runsDir, 'nan', 'summary.json'), 'utf8'));
  t.is(summary.status, 'failed');
  t.is(summary.code, 'ERR_NONFINITE_LOSS');
});

test.serial('synchronous addon calls validate their arguments and never abort the process', (t) => {
  for (const bad of [1e8, -1, Number.NaN, 2.5, Infinity, 1]) {
    const e = t.throws(() => listModels(bad));
    t.is((e as Error & { code?: string }).code, 'ERR_INVALID_ARG', String(bad));
    t.regex(e!.message, /numClasses: expected an integer in \[2, 100000\]/);
  }
  t.is(listModels(100_000).length, listModels().length);
});

test.serial('a pre-aborted signal rejects with its AbortError and writes nothing', async (t) => {
  const ac = new AbortController();
  ac.abort();
  // signal.reason is a DOMException, which ava's throwsAsync does not take for an Error.
  const e = await train({ overrides: quick('pre-aborted'), signal: ac.signal }).then(
    () => null,
    (x: unknown) => x,
  );
  t.is((e as { name?: string } | null)?.name, 'AbortError');
  t.false(existsSync(path.join(runsDir, 'pre-aborted')));
  const custom = new AbortController();
  custom.abort(new Error('shutting down'));
  const e2 = await t.throwsAsync(train({ overrides: quick('pre-aborted'), signal: custom.signal }));
  t.is(e2!.message, 'shutting down');
});

test.serial('an async event handler that rejects stops training like a throwing one', async (t) => {
  let unhandled = 0;
  const count = () => (unhandled += 1);
  process.on('unhandledRejection', count);
  try {
    const err = await t.throwsAsync(
      train({
        overrides: quick('rejecting-handler', { epochs: 50 }),
        onEvent: async (e) => {
          await new Promise((r) => setTimeout(r, 1));
          if (e.type === 'step') throw new Error('async handler failed');
        },
      }),
    );
    t.is(err!.message, 'async handler failed');
    t.true(existsSync(path.join(runsDir, 'rejecting-handler', 'checkpoints', 'interrupted.safetensors')));
    t.is(unhandled, 0);
  } finally {
    process.off('unhandledRejection', count);
  }
});

test.serial('an event handler that throws stops training and rejects with its error', async (t) => {
  const err = await t.throwsAsync(
    train({
      overrides: quick('throwing-handler', { epochs: 50 }),
      onEvent: (e) => {
        if (e.type === 'step') throw new Error('handler failed');
      },
    }),
  );
  t.is(err!.message, 'handler failed');
  t.true(existsSync(path.join(runsDir, 'throwing-handler', 'checkpoints', 'interrupted.safetensors')));
});

test.serial('a validation split is used for selection and the best checkpoint is tested once', async (t) => {
  const { summary } = await train({
    overrides: quick('validation', { dataset: { trainSize: 500, testSize: 300, validationSize: 200 }, epochs: 1, eval: { steps: 2 } }),
  });
  t.is(summary.selectedOn, 'validation');
  t.is(summary.best!.split, 'validation');
  t.is(summary.best!.samples, 200);
  t.is(summary.test!.split, 'test');
  t.is(summary.test!.samples, 300);
});
