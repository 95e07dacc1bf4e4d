/**
 * The one source of configuration truth: a zod schema for a training run.
 * Every object is strict (unknown keys are errors) so a typo never silently
 * falls back to a default. `toNativeConfig` maps a validated config onto the
 * native core's `NativeTrainConfig`; the `satisfies` checks below tie the
 * schema's output types to that contract at compile time.
 */
import { availableParallelism } from 'node:os';
import { z } from 'zod';
import type { EmaConfig, EvalSchedule } from '../generated/index.js';
import type {
  DeviceChoice,
  ModelName,
  NativeAugmentConfig,
  NativeEvalConfig,
  NativeMethodConfig,
  NativeOptimizerConfig,
} from '../native-types.js';

// Bounds: every number has a ceiling far above any sensible run but low
// enough that a typo (an extra digit, an exponent) is caught here instead of
// allocating gigabytes or diverging in the core. zod rejects NaN and
// +-Infinity for every z.number() already.
const unit = z.number().min(0).max(1);
const positiveInt = z.number().int().min(1);
/** Image counts: well above any dataset this project loads (CIFAR/SVHN are < 1M). */
const imageCount = positiveInt.max(10_000_000);
/** One PGD step in [0,1] pixel units can never usefully exceed the whole range. */
const stepSize = unit;
const batchSize = positiveInt.max(65_536);
const attackSteps = z.number().int().min(0).max(10_000);

/** Paths: the usual PATH_MAX, and no NUL byte (which every fs call rejects late, mid-run). */
const pathString = z
  .string()
  .min(1)
  .max(4096)
  .refine((s) => !s.includes('\0'), 'expected no NUL character');

const cores = availableParallelism();
/** More threads than cores only slows libtorch down; the message says why the limit is what it is. */
const threads = positiveInt.refine(
  (n) => n <= cores,
  `expected a number <= ${cores} (this machine has ${cores} core${cores === 1 ? '' : 's'})`,
);

export const stMethodSchema = z
  .object({
    name: z.literal('st'),
    reg: z.enum(['symmkl', 'js', 'l2']),
    beta: z.number().min(0).max(1000),
    epsilon: unit,
    stepSize,
    steps: attackSteps,
    branches: z.enum(['batched', 'separate']),
  })
  .strict();

export const naturalMethodSchema = z.object({ name: z.literal('natural') }).strict();

export const pgdAtMethodSchema = z
  .object({
    name: z.literal('pgd_at'),
    epsilon: unit,
    stepSize,
    steps: attackSteps,
  })
  .strict();

const beta = z.number().min(0).max(1000);

/** TRADES (Zhang et al. 2019): CE(f(x), y) + beta * KL(f(x) || f(x')); beta 6 in the paper's setting. */
export const tradesMethodSchema = z
  .object({ name: z.literal('trades'), beta, epsilon: unit, stepSize, steps: attackSteps })
  .strict();

/** MART (Wang et al. 2020): boosted CE at x' + beta * (1 - p(y|x))-weighted KL; beta 5 in the ST paper's comparison. */
export const martMethodSchema = z
  .object({ name: z.literal('mart'), beta, epsilon: unit, stepSize, steps: attackSteps })
  .strict();

/** Collaborative examples alone (the ST paper's Eq. 5): CE(f(x), y) + beta * KL(f(x'') || f(x)). */
export const collaborativeMethodSchema = z
  .object({ name: z.literal('collaborative'), beta, epsilon: unit, stepSize, steps: attackSteps })
  .strict();

/**
 * AWP (Wu et al. 2020) around TRADES or ST: weights perturbed by gamma x their
 * norm along the loss gradient for each step, removed after it; AWP starts
 * after `warmup` epochs.
 */
export const awpMethodSchema = z
  .object({
    name: z.literal('awp'),
    inner: z.discriminatedUnion('name', [tradesMethodSchema, stMethodSchema]),
    gamma: z.number().min(0).max(1),
    warmup: z.number().int().min(0).max(100_000),
  })
  .strict();

export const methodSchema = z.discriminatedUnion('name', [
  stMethodSchema,
  naturalMethodSchema,
  pgdAtMethodSchema,
  tradesMethodSchema,
  martMethodSchema,
  collaborativeMethodSchema,
  awpMethodSchema,
]);

export const optimizerSchema = z
  .object({
    lr: z.number().positive().max(10),
    momentum: z.number().min(0).lt(1),
    weightDecay: unit,
    nesterov: z.boolean(),
    milestones: z.array(positiveInt.max(100_000)).max(100),
    gamma: z.number().positive().max(10),
    /**
     * multistep: lr x gamma after each milestone epoch. cosine: RST's
     * lr * 0.5 * (1 + cos(pi * (epoch - 1) / epochs)), set once per epoch
     * (no milestones). Absent in older configs: multistep.
     */
    schedule: z.enum(['multistep', 'cosine']).default('multistep'),
  })
  .strict()
  .refine((o) => o.schedule !== 'cosine' || o.milestones.length === 0, {
    path: ['milestones'],
    message: 'the cosine schedule takes no milestones; expected []',
  });

export const augmentSchema = z
  .object({
    randomCropPadding: z.number().int().min(0).max(64),
    horizontalFlip: z.boolean(),
  })
  .strict();

/**
 * f32 | tf32 (CUDA's TF32 matmul/cuDNN flags; no-op on CPU) | bf16 | f16
 * (libtorch autocast, f32 master weights; f16 training with a dynamic
 * gradient scaler).
 */
export const precisionSchema = z.enum(['f32', 'tf32', 'bf16', 'f16']);

export const evalSchema = z
  .object({
    epsilon: unit,
    stepSize,
    steps: attackSteps,
    randomStart: z.boolean(),
    batchSize,
    maxSamples: imageCount.nullable(),
    /** Attacks and clean accuracy run in f32 unless asked: attacks in bf16/f16 understate robustness. */
    precision: precisionSchema.default('f32'),
  })
  .strict();

export const datasetSchema = z
  .object({
    name: z.enum(['mnist-embedded', 'cifar10', 'cifar100', 'svhn']),
    /** Use only the first N training images (the split order is class-balanced). */
    trainSize: imageCount.nullable(),
    /** Use only the first N held-out images. */
    testSize: imageCount.nullable(),
    /**
     * Carve a validation split of N images off the training split for model
     * selection (the best checkpoint is then evaluated once on the test split).
     * null: select on the test split, as the reference code does.
     */
    validationSize: imageCount.nullable(),
    /**
     * The data folder for downloaded datasets (CIFAR-10/100, SVHN). null:
     * $ST_NATIVE_DATA_DIR, else $XDG_DATA_HOME/st-native (~/.local/share/st-native).
     */
    dataDir: z.string().min(1).max(4096).nullable(),
    /**
     * Extra (pseudo-labelled) images mixed into every batch as RST does
     * (README: "Training with extra data (RST, ST-RST)"), or null (none).
     * Absent in older configs: null.
     */
    extra: z
      .object({
        /**
         * A .stextra file; null: RST's 500K images as `st-native data
         * import-rst` leaves them in the data folder (rst/ti_500K_pseudo_labeled.stextra).
         */
        file: pathString.nullable(),
        /** Share of each batch taken from the extra images: floor(batchSize * fraction) (RST's unsup_fraction 0.5). */
        fraction: z.number().gt(0).lt(1),
      })
      .strict()
      .nullable()
      .default(null),
  })
  .strict();

/**
 * When the per-epoch held-out evaluation runs: every `every` epochs, each of
 * the last `lastEpochs`, and always the final one. Model selection only sees
 * evaluated epochs.
 */
export const evalScheduleSchema = z
  .object({
    every: positiveInt.max(100_000),
    lastEpochs: z.number().int().min(0).max(100_000),
  })
  .strict();

/**
 * Weight averaging (README: "Weight averaging (EMA)"): an exponential moving
 * average of the weights after every optimiser step, evaluated beside them.
 * `decay` once warmed up; the first `warmupSteps` steps copy the weights,
 * then the decay ramps as min(decay, (1 + t) / (10 + t)) (TensorFlow's
 * ExponentialMovingAverage). `evalWith` picks which weights' evaluation
 * selects the best epoch.
 */
export const emaSchema = z
  .object({
    decay: z.number().gt(0).lt(1).default(0.999),
    warmupSteps: z.number().int().min(0).max(1_000_000_000).default(0),
    evalWith: z.enum(['ema', 'raw']).default('ema'),
  })
  .strict();

export const runConfigSchema = z
  .object({
    model: z.enum(['small_cnn', 'resnet18', 'preact_resnet18', 'wrn34_10', 'wrn34_5', 'wrn28_10']),
    dataset: datasetSchema,
    method: methodSchema,
    epochs: positiveInt.max(100_000),
    batchSize,
    optimizer: optimizerSchema,
    augment: augmentSchema,
    eval: evalSchema,
    evalSchedule: evalScheduleSchema,
    /** A safe integer, so JSON and the native i64 carry it exactly. */
    seed: z.number().int().min(Number.MIN_SAFE_INTEGER).max(Number.MAX_SAFE_INTEGER),
    device: z.enum(['auto', 'cpu', 'cuda']),
    threads: threads.nullable(),
    /** The training step's precision (the evaluation's is eval.precision). */
    precision: precisionSchema.default('f32'),
    /** Layout of weights and batches, training and evaluation (same numbers). */
    memoryFormat: z.enum(['contiguous', 'channels_last']).default('contiguous'),
    /** Folder under which each run gets its own folder. */
    runsDir: pathString,
    /** Name of the run folder; default: <timestamp>-<method>. */
    runName: z
      .string()
      .min(1)
      .max(200)
      .regex(/^[A-Za-z0-9._-]+$/, 'expected letters, digits, ".", "_" or "-" only')
      // "." and ".." would make the run folder the runs folder or its parent.
      .refine((s) => !/^\.+$/.test(s), 'expected a name that is not only dots')
      .nullable(),
    /** Start from the weights of this checkpoint (safetensors). */
    initCheckpoint: pathString.nullable(),
    /** Weight averaging (EMA), or null (none). Absent in older configs: null. */
    ema: emaSchema.nullable().default(null),
  })
  .strict();

export type RunConfig = z.infer<typeof runConfigSchema>;
export type MethodConfig = z.infer<typeof methodSchema>;

// Compile-time ties between the schema and the native contract (generated
// from the Rust serde types into ts/generated): if either side changes shape,
// e.g. a field or a registered model is added in Rust, this file stops
// compiling until the schema follows.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const sameMethod: Same<MethodConfig, NativeMethodConfig> = true;
const sameOptimizer: Same<z.infer<typeof optimizerSchema>, NativeOptimizerConfig> = true;
const sameAugment: Same<z.infer<typeof augmentSchema>, NativeAugmentConfig> = true;
const sameEval: Same<z.infer<typeof evalSchema>, NativeEvalConfig> = true;
const sameSchedule: Same<z.infer<typeof evalScheduleSchema>, EvalSchedule> = true;
const sameEma: Same<z.infer<typeof emaSchema>, EmaConfig> = true;
/** The model names of the native registry (ModelName is generated from it). */
const sameModel: Same<RunConfig['model'], ModelName> = true;
const sameDevice: Same<RunConfig['device'], DeviceChoice> = true;
void [sameEma, sameSchedule, sameMethod, sameOptimizer, sameAugment, sameEval, sameModel, sameDevice];
