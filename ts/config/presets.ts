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
  dataset: { name: 'mnist-embedded', trainSize: null, testSize: null, validationSize: null, dataDir: null },
  method: { name: 'st', reg: 'symmkl', beta: 3, epsilon: 0.2, stepSize: 0.04, steps: 5, branches: 'batched' },
  epochs: 3,
  batchSize: 64,
  optimizer: { lr: 0.03, momentum: 0.9, weightDecay: 0, nesterov: false, milestones: [], gamma: 0.1 },
  augment: { randomCropPadding: 0, horizontalFlip: false },
  eval: { epsilon: 0.2, stepSize: 0.02, steps: 20, randomStart: true, batchSize: 500, maxSamples: null },
  evalSchedule: { every: 1, lastEpochs: 0 },
  seed: 0,
  device: 'auto',
  threads: null,
  runsDir: 'runs',
  runName: null,
  initCheckpoint: null,
};

export const DEFAULT_PRESET = 'mnist-st-quick';

/**
 * The paper's training settings (method page §5), one row per dataset. The
 * evaluation is the paper's model-selection attack: PGD-20, eps 8/255, step
 * 2/255, random start, on the whole test split after every epoch.
 */
export const paperSettings = {
  cifar10: { stStep: 2 / 255, epochs: 120, lr: 0.1, milestones: [80, 100], stBeta: 6, augment: { randomCropPadding: 4, horizontalFlip: true } },
  cifar100: { stStep: 2 / 255, epochs: 120, lr: 0.1, milestones: [80, 100], stBeta: 4, augment: { randomCropPadding: 4, horizontalFlip: true } },
  svhn: { stStep: 1 / 255, epochs: 80, lr: 0.01, milestones: [50, 65], stBeta: 8, augment: { randomCropPadding: 0, horizontalFlip: false } },
} as const;

type PaperDataset = keyof typeof paperSettings;
const EPS = 8 / 255;

function paperPreset(dataset: PaperDataset, model: RunConfig['model'], method: 'st' | 'pgd_at'): Preset {
  const s = paperSettings[dataset];
  const modelLabel = { resnet18: 'ResNet-18', wrn34_10: 'WRN-34-10', wrn34_5: 'WRN-34-5' }[model as 'resnet18' | 'wrn34_10' | 'wrn34_5'];
  const datasetLabel = { cifar10: 'CIFAR-10', cifar100: 'CIFAR-100', svhn: 'SVHN' }[dataset];
  const methodConfig: RunConfig['method'] =
    method === 'st'
      ? { name: 'st', reg: 'symmkl', beta: s.stBeta, epsilon: EPS, stepSize: s.stStep, steps: 10, branches: 'batched' }
      : { name: 'pgd_at', epsilon: EPS, stepSize: s.stStep, steps: 10 };
  const what = method === 'st' ? `ST (symmkl, beta ${s.stBeta})` : 'PGD-AT';
  return {
    name: `${dataset}-${model}-${method === 'st' ? 'st' : 'pgd-at'}`,
    description: `the paper's ${datasetLabel} setting: ${modelLabel}, ${what}, eps 8/255, step ${s.stStep === 1 / 255 ? '1' : '2'}/255, K 10, ${s.epochs} epochs, lr ${s.lr} x0.1 at ${s.milestones.join('/')}, batch 128`,
    overrides: {
      model,
      dataset: { name: dataset },
      method: methodConfig,
      epochs: s.epochs,
      batchSize: 128,
      optimizer: { lr: s.lr, momentum: 0.9, weightDecay: 5e-4, nesterov: false, milestones: [...s.milestones], gamma: 0.1 },
      augment: { ...s.augment },
      eval: { epsilon: EPS, stepSize: 2 / 255, steps: 20, randomStart: true, batchSize: 500, maxSamples: null },
    },
  };
}

/** Every training setting of the paper: ST and PGD-AT on each dataset with ResNet-18; WRN-34-10 and WRN-34-5 on CIFAR-10. */
function paperPresets(): Preset[] {
  const out: Preset[] = [];
  for (const dataset of ['cifar10', 'cifar100', 'svhn'] as const) {
    for (const method of ['st', 'pgd_at'] as const) out.push(paperPreset(dataset, 'resnet18', method));
  }
  for (const model of ['wrn34_10', 'wrn34_5'] as const) {
    for (const method of ['st', 'pgd_at'] as const) out.push(paperPreset('cifar10', model, method));
  }
  return out;
}

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
  ...paperPresets(),
];

export function findPreset(name: string): Preset | undefined {
  return presets.find((p) => p.name === name);
}
