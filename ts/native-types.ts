/**
 * The contract between TypeScript and the native core, written once here.
 *
 * The native side (native/core `config.rs`, `events.rs`) deserialises exactly
 * these shapes with serde (`deny_unknown_fields`, camelCase) and serialises
 * events with a `type` tag, so every type below is a discriminated union or a
 * plain record that JSON carries unchanged. TS never builds these by hand:
 * `ts/config` turns a validated user config into a `NativeTrainConfig`.
 */

/** Names registered in native/core `models/registry.rs`. */
export type ModelName = 'small_cnn' | 'resnet18';

/** The `reg` discrepancy of Squeeze Training (method page §2). */
export type StReg = 'symmkl' | 'js' | 'l2';

/**
 * How the two ST branches are forwarded.
 * - `batched`: adversarial and collaborative points stacked into one
 *   forward/backward with per-branch BatchNorm statistics (equal to the
 *   reference, faster).
 * - `separate`: one forward per branch, as the reference code does.
 */
export type StBranches = 'batched' | 'separate';

export interface StMethodConfig {
  name: 'st';
  reg: StReg;
  /** Weight of the reg term. */
  beta: number;
  /** L-inf radius of the training ball, in [0,1] pixel units. */
  epsilon: number;
  /** Sign-gradient step alpha, in [0,1] pixel units. */
  stepSize: number;
  /** Inner steps K. */
  steps: number;
  branches: StBranches;
}

/** Plain cross-entropy training: the "normally trained" baseline. */
export interface NaturalMethodConfig {
  name: 'natural';
}

/** Madry et al. PGD adversarial training (CE on PGD points, random start). */
export interface PgdAtMethodConfig {
  name: 'pgd_at';
  epsilon: number;
  stepSize: number;
  steps: number;
}

export type NativeMethodConfig = StMethodConfig | NaturalMethodConfig | PgdAtMethodConfig;

export interface NativeOptimizerConfig {
  /** Initial learning rate. */
  lr: number;
  momentum: number;
  weightDecay: number;
  nesterov: boolean;
  /** Epochs (1-based, counted as completed epochs) after which lr is multiplied by `gamma`. */
  milestones: number[];
  gamma: number;
}

export interface NativeAugmentConfig {
  /** Zero padding for random crop back to the input size; 0 disables cropping. */
  randomCropPadding: number;
  horizontalFlip: boolean;
}

export interface NativeEvalConfig {
  /** PGD evaluation radius (L-inf, [0,1] units). */
  epsilon: number;
  stepSize: number;
  /** PGD steps (20 for PGD-20). */
  steps: number;
  /** Uniform random start in the eps-ball. */
  randomStart: boolean;
  batchSize: number;
  /** Evaluate on at most this many held-out images (first N); null = all. */
  maxSamples: number | null;
}

export interface NativeTrainConfig {
  model: ModelName;
  numClasses: number;
  method: NativeMethodConfig;
  epochs: number;
  batchSize: number;
  optimizer: NativeOptimizerConfig;
  augment: NativeAugmentConfig;
  eval: NativeEvalConfig;
  seed: number;
  device: 'auto' | 'cpu' | 'cuda';
  /** libtorch intra-op threads; null keeps libtorch's default. */
  threads: number | null;
  /** Folder the native loop writes checkpoints into (created if missing). */
  outDir: string;
  /** Checkpoint to resume weights from (safetensors), or null. */
  initCheckpoint: string | null;
}

/**
 * A dataset handed to native code in one crossing: images N×C×H×W as uint8
 * (0..255, scaled to [0,1] on the device), labels as uint8 class indices.
 */
export interface NativeSplit {
  images: Uint8Array;
  labels: Uint8Array;
}
export interface NativeDataset {
  train: NativeSplit;
  test: NativeSplit;
  /**
   * Optional validation split. With it, per-epoch evaluation and model
   * selection use it and the best checkpoint is evaluated once on `test`;
   * without it they use `test`, as the reference code does.
   */
  validation?: NativeSplit;
  channels: number;
  height: number;
  width: number;
}

/** Loss parts of one training step (which ones exist depends on the method). */
export interface LossParts {
  /** CE on the adversarial point x_adv (ST, PGD-AT). */
  ceAdv?: number;
  /** CE on the benign point x. */
  ceBenign?: number;
  /** CE on the collaborative point x_col (ST). */
  ceCol?: number;
  /** The reg discrepancy between x_adv and x_col (ST). */
  reg?: number;
}

export type EvalSplit = 'validation' | 'test';

export interface EvalResult {
  epoch: number;
  /** The split evaluated. */
  split: EvalSplit;
  cleanAcc: number;
  robustAcc: number;
  /** e.g. "pgd-20" */
  attack: string;
  samples: number;
  seconds: number;
}

export type TrainEvent =
  | {
      type: 'start';
      model: ModelName;
      parameters: number;
      device: string;
      method: string;
      trainSize: number;
      /** Images evaluated after each epoch (validation split if any, else test). */
      testSize: number;
      epochs: number;
      stepsPerEpoch: number;
      startEpoch: number;
    }
  | {
      type: 'step';
      epoch: number; // 1-based
      step: number; // 1-based within the epoch
      stepsPerEpoch: number;
      lr: number;
      loss: number;
      parts: LossParts;
      imagesPerSec: number;
      elapsedSec: number;
    }
  | {
      type: 'epoch';
      epoch: number;
      loss: number;
      parts: LossParts;
      trainAcc: number;
      seconds: number;
      imagesPerSec: number;
    }
  | ({ type: 'eval' } & EvalResult)
  | {
      type: 'checkpoint';
      epoch: number;
      kind: 'last' | 'best' | 'interrupted';
      path: string;
    }
  | ({ type: 'done' } & TrainSummary);

export interface TrainSummary {
  status: 'completed' | 'cancelled';
  epochsCompleted: number;
  /** The split model selection used. */
  selectedOn: EvalSplit;
  /** Best robust accuracy over evaluated epochs on the selection split (model selection by PGD). */
  best: EvalResult | null;
  last: EvalResult | null;
  /** The best checkpoint on the test split: the number to report (equals `best` when selected on test). */
  test: EvalResult | null;
  /** Paths of written checkpoints, when written. */
  lastCheckpoint: string | null;
  bestCheckpoint: string | null;
  seconds: number;
}

export interface ModelInfo {
  name: ModelName;
  description: string;
  /** Input shape [C, H, W] the model is built for. */
  inputShape: [number, number, number];
  numClasses: number;
  parameters: number;
}

export interface RuntimeInfo {
  libtorchVersion: string;
  cudaAvailable: boolean;
  cudaDevices: number;
  /** Cores this process may use: the upper bound of `threads`. */
  cores: number;
}

/** What a checkpoint file says about itself (its safetensors metadata). */
export interface CheckpointInfo {
  /** True when the file carried st-native's checksum and it matched (false: a file from elsewhere, unverified). */
  verified: boolean;
  model: string | null;
  numClasses: number | null;
  /** The epoch whose end the weights are (evaluation seeds from it). */
  epoch: number | null;
  seed: number | null;
  kind: string | null;
  tensors: number;
}

/** Sample counts of a run's splits, for checks before the run starts. */
export interface DataSizes {
  train: number;
  test: number;
  validation: number | null;
}

/** The functions the native addon exposes, as ts/native.ts types them. */
export interface NativeBinding {
  listModels(numClasses: number): ModelInfo[];
  runtimeInfo(): RuntimeInfo;
  /**
   * Throws a NativeError when a run cannot start (config ranges, batch size vs
   * data, memory on CPU, device, initial checkpoint); nothing is created.
   */
  preflight(config: NativeTrainConfig, shape: [number, number, number], sizes: DataSizes): void;
  /** Reads and verifies a checkpoint's header and checksum. */
  inspectCheckpoint(path: string): CheckpointInfo;
  /** Resolves with the summary; rejects with an Error whose message names the problem. */
  train(config: NativeTrainConfig, data: NativeDataset, onEvent: (event: TrainEvent) => unknown, signal?: AbortSignal): Promise<TrainSummary>;
  /**
   * Clean and PGD accuracy of a checkpoint on a split (eval-mode BN). PGD's
   * random starts are seeded as the training run's evaluation after `epoch`
   * was, so the run's own numbers are reproduced exactly (same settings and
   * device).
   */
  evaluate(
    checkpoint: string,
    model: ModelName,
    numClasses: number,
    data: { images: Uint8Array; labels: Uint8Array; channels: number; height: number; width: number },
    evalConfig: NativeEvalConfig,
    device: 'auto' | 'cpu' | 'cuda',
    seed: number,
    epoch: number,
  ): Promise<EvalResult>;
}
