/**
 * The one source of configuration truth: a zod schema for a training run.
 * Every object is strict (unknown keys are errors) so a typo never silently
 * falls back to a default. `toNativeConfig` maps a validated config onto the
 * native core's `NativeTrainConfig`; the `satisfies` checks below tie the
 * schema's output types to that contract at compile time.
 */
import { z } from 'zod';
import type {
  NativeAugmentConfig,
  NativeEvalConfig,
  NativeMethodConfig,
  NativeOptimizerConfig,
} from '../native-types.js';

const unit = z.number().min(0).max(1);
const positiveInt = z.number().int().min(1);

export const stMethodSchema = z
  .object({
    name: z.literal('st'),
    reg: z.enum(['symmkl', 'js', 'l2']),
    beta: z.number().min(0),
    epsilon: unit,
    stepSize: z.number().min(0),
    steps: z.number().int().min(0).max(10_000),
    branches: z.enum(['batched', 'separate']),
  })
  .strict();

export const naturalMethodSchema = z.object({ name: z.literal('natural') }).strict();

export const pgdAtMethodSchema = z
  .object({
    name: z.literal('pgd_at'),
    epsilon: unit,
    stepSize: z.number().min(0),
    steps: z.number().int().min(0).max(10_000),
  })
  .strict();

export const methodSchema = z.discriminatedUnion('name', [stMethodSchema, naturalMethodSchema, pgdAtMethodSchema]);

export const optimizerSchema = z
  .object({
    lr: z.number().positive(),
    momentum: z.number().min(0).lt(1),
    weightDecay: z.number().min(0),
    nesterov: z.boolean(),
    milestones: z.array(positiveInt),
    gamma: z.number().positive(),
  })
  .strict();

export const augmentSchema = z
  .object({
    randomCropPadding: z.number().int().min(0),
    horizontalFlip: z.boolean(),
  })
  .strict();

export const evalSchema = z
  .object({
    epsilon: unit,
    stepSize: z.number().min(0),
    steps: z.number().int().min(0).max(10_000),
    randomStart: z.boolean(),
    batchSize: positiveInt,
    maxSamples: positiveInt.nullable(),
  })
  .strict();

export const datasetSchema = z
  .object({
    name: z.enum(['mnist-embedded', 'cifar10', 'cifar100', 'svhn']),
    /** Use only the first N training images (the split order is class-balanced). */
    trainSize: positiveInt.nullable(),
    /** Use only the first N held-out images. */
    testSize: positiveInt.nullable(),
    /**
     * Carve a validation split of N images off the training split for model
     * selection (the best checkpoint is then evaluated once on the test split).
     * null: select on the test split, as the reference code does.
     */
    validationSize: positiveInt.nullable(),
  })
  .strict();

export const runConfigSchema = z
  .object({
    model: z.enum(['small_cnn', 'resnet18']),
    dataset: datasetSchema,
    method: methodSchema,
    epochs: positiveInt,
    batchSize: positiveInt,
    optimizer: optimizerSchema,
    augment: augmentSchema,
    eval: evalSchema,
    seed: z.number().int(),
    device: z.enum(['auto', 'cpu', 'cuda']),
    threads: positiveInt.nullable(),
    /** Folder under which each run gets its own folder. */
    runsDir: z.string().min(1),
    /** Name of the run folder; default: <timestamp>-<method>. */
    runName: z
      .string()
      .regex(/^[A-Za-z0-9._-]+$/, 'expected letters, digits, ".", "_" or "-" only')
      .nullable(),
    /** Start from the weights of this checkpoint (safetensors). */
    initCheckpoint: z.string().min(1).nullable(),
  })
  .strict();

export type RunConfig = z.infer<typeof runConfigSchema>;
export type MethodConfig = z.infer<typeof methodSchema>;

// Compile-time ties between the schema and the native contract: if either
// side changes shape, this file stops compiling.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const sameMethod: Same<MethodConfig, NativeMethodConfig> = true;
const sameOptimizer: Same<z.infer<typeof optimizerSchema>, NativeOptimizerConfig> = true;
const sameAugment: Same<z.infer<typeof augmentSchema>, NativeAugmentConfig> = true;
const sameEval: Same<z.infer<typeof evalSchema>, NativeEvalConfig> = true;
void [sameMethod, sameOptimizer, sameAugment, sameEval];
