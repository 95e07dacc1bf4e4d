/**
 * The contract between TypeScript and the native core.
 *
 * The JSON shapes that cross the boundary (config in; events, summaries,
 * results out) are generated from the serde types of native/core
 * (`config.rs`, `events.rs`, ...) by ts-rs into ./generated/, and re-exported
 * here under the names the TS code uses: a field added in Rust appears here
 * without anyone retyping it (`cargo test -p st-core` regenerates the folder,
 * and fails while the committed copy is stale). Only what is TS-side by
 * nature is written by hand below: the dataset buffers, the runtime report
 * (a JSON literal in native/node) and the binding's signatures.
 * TS never builds these by hand: `ts/config` turns a validated user config
 * into a `NativeTrainConfig`.
 */
import type {
  AttackResult,
  AttackSpec,
  AugmentConfig as NativeAugmentConfig,
  Branches as StBranches,
  CheckpointInfo,
  CheckpointKind,
  DeviceChoice,
  EvalConfig as NativeEvalConfig,
  EvalEvent,
  EvalReport,
  EvalRequest,
  EvalResult,
  EvalSplit,
  Event as TrainEvent,
  Keep,
  LossParts,
  MethodConfig as NativeMethodConfig,
  ModelInfo,
  ModelName,
  Norm,
  Normalization,
  OptimizerConfig as NativeOptimizerConfig,
  Reg as StReg,
  RunEval,
  RunStatus,
  TrainConfig as NativeTrainConfig,
  TrainSummary,
  WorstCase,
} from './generated/index.js';

export type {
  AttackResult,
  AttackSpec,
  CheckpointInfo,
  CheckpointKind,
  DeviceChoice,
  EvalEvent,
  EvalReport,
  EvalRequest,
  EvalResult,
  EvalSplit,
  Keep,
  LossParts,
  ModelInfo,
  ModelName,
  NativeAugmentConfig,
  NativeEvalConfig,
  NativeMethodConfig,
  NativeOptimizerConfig,
  NativeTrainConfig,
  Norm,
  Normalization,
  RunEval,
  RunStatus,
  StBranches,
  StReg,
  TrainEvent,
  TrainSummary,
  WorstCase,
};

/** Squeeze Training's method config. */
export type StMethodConfig = Extract<NativeMethodConfig, { name: 'st' }>;
/** Plain cross-entropy training: the "normally trained" baseline. */
export type NaturalMethodConfig = Extract<NativeMethodConfig, { name: 'natural' }>;
/** Madry et al. PGD adversarial training (CE on PGD points, random start). */
export type PgdAtMethodConfig = Extract<NativeMethodConfig, { name: 'pgd_at' }>;

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

/** What the loaded addon runs on (native/node builds it as a JSON literal, not a Rust type). */
export interface RuntimeInfo {
  libtorchVersion: string;
  cudaAvailable: boolean;
  cudaDevices: number;
  /** Cores this process may use: the upper bound of `threads`. */
  cores: number;
  /**
   * glibc's malloc settings for tensor blocks: `st-native` (freed blocks up
   * to 32 MiB kept for reuse; ST_NATIVE_MALLOC=default opts out), `glibc
   * default`, or `user: VAR` when the user set one of glibc's variables.
   */
  allocator: string;
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
  /** Throws ERR_CHECKPOINT (naming the tensors) unless the file loads into `model`. */
  checkCheckpoint(path: string, model: ModelName, numClasses: number, shape: readonly number[]): void;
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
    device: DeviceChoice,
    seed: number,
    epoch: number,
  ): Promise<EvalResult>;
  /**
   * A checkpoint under a list of attacks on a split (eval mode), with the
   * per-point worst case. Events arrive as attacks and batches finish (batch
   * ticks may be dropped under load, nothing else). Aborting stops between
   * batches and rejects with `signal.reason`.
   */
  evaluateAttacks(
    request: EvalRequest,
    data: { images: Uint8Array; labels: Uint8Array; channels: number; height: number; width: number },
    onEvent: (event: EvalEvent) => unknown,
    signal?: AbortSignal,
  ): Promise<EvalReport>;
}
