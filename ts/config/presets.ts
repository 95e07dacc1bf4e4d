/**
 * Named presets: small override objects on the base config. Each says what it
 * is for and, once measured, what it reaches and on what hardware.
 */
import type { RunConfig } from './schema.js';

/** A partial config: nested objects may be partial; arrays are replaced. */
export type ConfigOverrides = {
  [K in keyof RunConfig]?: RunConfig[K] extends readonly unknown[]
    ? RunConfig[K]
    : RunConfig[K] extends object | null
      ? Partial<NonNullable<RunConfig[K]>> | null
      : RunConfig[K];
};

export interface Preset {
  name: string;
  description: string;
  overrides: ConfigOverrides;
}

/**
 * The base every preset starts from: the default `st-native train` job.
 * ST on the embedded MNIST digits, chosen to finish in under 3 minutes on 2 CPU
 * cores and to separate robust from non-robust models clearly (README: "The
 * default preset and why"). Measured there: 96.8 % clean, 76.7 % PGD-20 at
 * eps 0.2 in 2 min 45 s (a normally trained SmallCNN: 97.1 % / 25.7 %).
 */
export const baseConfig: RunConfig = {
  model: 'small_cnn',
  dataset: { name: 'mnist-embedded', trainSize: null, testSize: null, validationSize: null },
  method: { name: 'st', reg: 'symmkl', beta: 3, epsilon: 0.2, stepSize: 0.04, steps: 5, branches: 'batched' },
  epochs: 3,
  batchSize: 64,
  optimizer: { lr: 0.03, momentum: 0.9, weightDecay: 0, nesterov: false, milestones: [], gamma: 0.1 },
  augment: { randomCropPadding: 0, horizontalFlip: false },
  eval: { epsilon: 0.2, stepSize: 0.02, steps: 20, randomStart: true, batchSize: 500, maxSamples: null },
  seed: 0,
  device: 'auto',
  threads: null,
  runsDir: 'runs',
  runName: null,
  initCheckpoint: null,
};

export const DEFAULT_PRESET = 'mnist-st-quick';

export const presets: readonly Preset[] = [
  {
    name: 'mnist-st-quick',
    description: 'ST (symmkl, beta 3, eps 0.2, K 5) on the embedded MNIST digits, 3 epochs, under 3 min on 2 CPU cores',
    overrides: {},
  },
  {
    name: 'mnist-natural-quick',
    description: 'plain cross-entropy baseline on the embedded MNIST digits, same model, schedule and evaluation',
    overrides: { method: { name: 'natural' } },
  },
  {
    name: 'mnist-pgd-at-quick',
    description: 'PGD-AT (eps 0.2, K 5) on the embedded MNIST digits, same schedule and evaluation',
    overrides: { method: { name: 'pgd_at', epsilon: 0.2, stepSize: 0.04, steps: 5 } },
  },
  {
    name: 'cifar10-st-paper',
    description: 'the paper\'s CIFAR-10 setting: ResNet-18, ST symmkl beta 6, eps 8/255, K 10, 120 epochs (needs CIFAR-10: roadmap)',
    overrides: {
      model: 'resnet18',
      dataset: { name: 'cifar10' },
      method: { name: 'st', reg: 'symmkl', beta: 6, epsilon: 8 / 255, stepSize: 2 / 255, steps: 10, branches: 'batched' },
      epochs: 120,
      batchSize: 128,
      optimizer: { lr: 0.1, momentum: 0.9, weightDecay: 5e-4, nesterov: false, milestones: [80, 100], gamma: 0.1 },
      augment: { randomCropPadding: 4, horizontalFlip: true },
      eval: { epsilon: 8 / 255, stepSize: 2 / 255, steps: 20, randomStart: true, batchSize: 500, maxSamples: null },
    },
  },
];

export function findPreset(name: string): Preset | undefined {
  return presets.find((p) => p.name === name);
}
