//! The run configuration the core accepts. `TrainConfig` is `NativeTrainConfig`
//! in TypeScript: its TS type is generated from these serde types (ts-rs, see
//! `ts_contract`) into `ts/generated/`. TS validates first with zod; unknown
//! fields are rejected here too, and `validate` re-checks the ranges the
//! numerics rely on so the core is safe to call on its own.

use crate::divergence::Reg;
use crate::error::{CoreError, Result};
use serde::{Deserialize, Serialize};

#[cfg(test)]
pub(crate) mod ts_contract;

/// Where the run executes; `auto` picks CUDA when available.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
pub enum DeviceChoice {
    #[default]
    Auto,
    Cpu,
    Cuda,
}

/// How the two ST branches are forwarded (see `methods::st`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
pub enum Branches {
    /// Adversarial and collaborative points stacked into one forward/backward
    /// with per-branch BatchNorm statistics (equal to the reference, faster).
    #[default]
    Batched,
    /// One forward per branch, as the reference code does.
    Separate,
}

/// Numeric precision of the forward/backward passes (see `precision`).
/// `bf16`/`f16` run the model's forward under libtorch autocast with f32
/// master weights (f16 with a dynamic gradient scaler); `tf32` sets the CUDA
/// matmul/cuDNN allow-TF32 flags and is a no-op on CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    #[default]
    F32,
    Tf32,
    Bf16,
    F16,
}

/// Memory layout of images and 4-d weights: `channels_last` is NHWC strides
/// with NCHW shapes (same numbers, faster kernels on some hardware).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum MemoryFormat {
    #[default]
    Contiguous,
    ChannelsLast,
}

/// Squeeze Training (method page §2).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StConfig {
    /// The discrepancy between the adversarial and collaborative predictions.
    pub reg: Reg,
    /// Weight of the reg term.
    pub beta: f64,
    /// L-inf radius of the training ball, in [0,1] pixel units.
    pub epsilon: f64,
    /// Sign-gradient step alpha, in [0,1] pixel units.
    pub step_size: f64,
    /// Inner steps K.
    pub steps: usize,
    #[serde(default)]
    pub branches: Branches,
}

/// Madry et al. PGD adversarial training (CE on PGD points, random start).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PgdAtConfig {
    pub epsilon: f64,
    pub step_size: f64,
    pub steps: usize,
}

/// TRADES (Zhang et al., ICML 2019): CE(f(x), y) + beta * KL(f(x) || f(x')),
/// x' from sign-ascent steps on that KL (model in eval mode).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TradesConfig {
    /// Weight of the KL term (1/lambda in the paper; 6 in its CIFAR setting).
    pub beta: f64,
    pub epsilon: f64,
    pub step_size: f64,
    pub steps: usize,
}

/// MART (Wang et al., ICLR 2020): boosted CE at the PGD point plus beta *
/// KL(f(x) || f(x')) weighted by 1 - p(y|x).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MartConfig {
    /// Weight of the weighted KL term (5 in the ST paper's comparison).
    pub beta: f64,
    pub epsilon: f64,
    pub step_size: f64,
    pub steps: usize,
}

/// Collaborative examples alone (the ST paper's Eq. 5, method page §8):
/// CE(f(x), y) + beta * KL(f(x'') || f(x)), x'' from sign-descent steps on CE.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CollaborativeConfig {
    pub beta: f64,
    pub epsilon: f64,
    pub step_size: f64,
    pub steps: usize,
}

/// The methods AWP can wrap, tagged by `name`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum AwpInner {
    Trades(TradesConfig),
    St(StConfig),
}

/// Adversarial weight perturbation (Wu, Xia, Wang, NeurIPS 2020) around
/// another method's loss: each step perturbs every weight matrix / conv
/// kernel by gamma * ||w|| along its normalised loss gradient, takes the
/// optimiser step at the perturbed weights, then removes the perturbation.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AwpConfig {
    /// The wrapped method (its inner loop finds the points, its loss is perturbed).
    pub inner: AwpInner,
    /// Relative size of the weight perturbation (5e-3 in the TRADES-AWP code, 1e-2 in AT-AWP's).
    pub gamma: f64,
    /// Epochs trained with the inner method alone before AWP starts.
    pub warmup: usize,
}

/// The training method, tagged by `name`. `natural` is plain cross-entropy
/// training: the "normally trained" baseline.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum MethodConfig {
    St(StConfig),
    Natural {},
    PgdAt(PgdAtConfig),
    Trades(TradesConfig),
    Mart(MartConfig),
    Collaborative(CollaborativeConfig),
    Awp(AwpConfig),
}

impl MethodConfig {
    pub fn name(&self) -> &'static str {
        match self {
            MethodConfig::St(_) => "st",
            MethodConfig::Natural {} => "natural",
            MethodConfig::PgdAt(_) => "pgd_at",
            MethodConfig::Trades(_) => "trades",
            MethodConfig::Mart(_) => "mart",
            MethodConfig::Collaborative(_) => "collaborative",
            MethodConfig::Awp(_) => "awp",
        }
    }

    /// Range checks of the method's settings; `prefix` is the field path
    /// of the method object ("method").
    pub fn validate(&self, prefix: &str) -> Result<()> {
        let beta = |beta: f64| {
            check(
                (0.0..=limits::MAX_BETA).contains(&beta),
                &format!("{prefix}.beta"),
                "expected a number in [0, 1000]",
            )
        };
        match self {
            MethodConfig::St(st) => {
                check_ball(prefix, st.epsilon, st.step_size, st.steps)?;
                beta(st.beta)
            }
            MethodConfig::Trades(c) => {
                check_ball(prefix, c.epsilon, c.step_size, c.steps)?;
                beta(c.beta)
            }
            MethodConfig::Mart(c) => {
                check_ball(prefix, c.epsilon, c.step_size, c.steps)?;
                beta(c.beta)
            }
            MethodConfig::Collaborative(c) => {
                check_ball(prefix, c.epsilon, c.step_size, c.steps)?;
                beta(c.beta)
            }
            MethodConfig::Awp(a) => {
                let inner = match &a.inner {
                    AwpInner::Trades(c) => MethodConfig::Trades(c.clone()),
                    AwpInner::St(c) => MethodConfig::St(c.clone()),
                };
                inner.validate(&format!("{prefix}.inner"))?;
                check(
                    a.gamma.is_finite() && (0.0..=limits::MAX_AWP_GAMMA).contains(&a.gamma),
                    &format!("{prefix}.gamma"),
                    "expected a number in [0, 1] (a perturbation relative to each weight's norm)",
                )?;
                check(
                    a.warmup <= limits::MAX_EPOCHS,
                    &format!("{prefix}.warmup"),
                    "expected an integer in [0, 100000]",
                )
            }
            MethodConfig::PgdAt(p) => check_ball(prefix, p.epsilon, p.step_size, p.steps),
            MethodConfig::Natural {} => Ok(()),
        }
    }
}

/// How the learning rate changes from epoch to epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
pub enum LrSchedule {
    /// `lr` multiplied by `gamma` after each milestone epoch.
    #[default]
    Multistep,
    /// RST's `cosine` (yaircarmon/semisup-adv, `adjust_learning_rate`): in
    /// 1-based epoch e of E, `lr * 0.5 * (1 + cos((e - 1) / E * pi))`, set
    /// once per epoch.
    Cosine,
}

/// SGD with a per-epoch learning-rate schedule.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OptimizerConfig {
    /// Initial learning rate.
    pub lr: f64,
    pub momentum: f64,
    pub weight_decay: f64,
    pub nesterov: bool,
    /// 1-based epochs after which the learning rate is multiplied by `gamma`
    /// (PyTorch `MultiStepLR` stepped once per epoch); `multistep` only.
    pub milestones: Vec<usize>,
    pub gamma: f64,
    /// `multistep` (the milestones) or `cosine`; absent in older configs: multistep.
    #[serde(default)]
    pub schedule: LrSchedule,
}

impl OptimizerConfig {
    /// Learning rate used during 1-based `epoch` of a run of `epochs`.
    pub fn lr_at(&self, epoch: usize, epochs: usize) -> f64 {
        match self.schedule {
            LrSchedule::Multistep => {
                let decays = self.milestones.iter().filter(|&&m| m < epoch).count();
                self.lr * self.gamma.powi(decays as i32)
            }
            LrSchedule::Cosine => {
                let t = (epoch as f64 - 1.0) / epochs.max(1) as f64;
                self.lr * 0.5 * (1.0 + (t * std::f64::consts::PI).cos())
            }
        }
    }
}

/// Extra (pseudo-labelled) training images mixed into every batch, as RST's
/// `SemiSupervisedSampler` does (see `crate::sampler`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExtraConfig {
    /// Absolute path of a `.stextra` file (README: "Extra data for RST").
    pub file: String,
    /// Fraction of each batch drawn from the extra images (RST's
    /// `unsup_fraction`, 0.5): `floor(batchSize * fraction)` of them.
    pub fraction: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AugmentConfig {
    /// Zero padding for random crop back to the input size; 0 disables cropping.
    pub random_crop_padding: i64,
    pub horizontal_flip: bool,
}

/// The PGD evaluation after each epoch (and of a checkpoint).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EvalConfig {
    /// PGD evaluation radius (L-inf, [0,1] units).
    pub epsilon: f64,
    pub step_size: f64,
    /// PGD steps (20 for PGD-20).
    pub steps: usize,
    /// Uniform random start in the eps-ball.
    pub random_start: bool,
    pub batch_size: i64,
    /// Evaluate on at most this many held-out images (first N); null = all.
    pub max_samples: Option<i64>,
    /// Precision of the attacks and clean evaluation: f32 unless asked
    /// (attacks in bf16/f16 understate robustness).
    #[serde(default)]
    pub precision: Precision,
}

/// When the held-out evaluation runs: after every `every`-th epoch, after
/// each of the last `last_epochs` epochs, and always after the final one.
/// Model selection (the best checkpoint) only sees evaluated epochs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EvalSchedule {
    pub every: usize,
    pub last_epochs: usize,
}

impl Default for EvalSchedule {
    fn default() -> Self {
        EvalSchedule {
            every: 1,
            last_epochs: 0,
        }
    }
}

impl EvalSchedule {
    /// Whether the evaluation runs after 1-based `epoch` of `epochs`.
    pub fn runs_after(&self, epoch: usize, epochs: usize) -> bool {
        epoch == epochs
            || (self.every > 0 && epoch.is_multiple_of(self.every))
            || epoch + self.last_epochs > epochs
    }
}

/// Which weights a run with an EMA selects its best epoch by.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
pub enum EmaEvalWith {
    Ema,
    Raw,
}

/// An exponential moving average of the weights, updated after every
/// optimiser step (see `crate::ema` for the recursion and its provenance).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EmaConfig {
    /// The decay once warmed up, in (0, 1) (e.g. 0.999).
    pub decay: f64,
    /// Optimiser steps during which the average just copies the weights.
    pub warmup_steps: usize,
    /// Which weights' evaluation picks the best epoch (`best.safetensors`
    /// and `ema-best.safetensors` are both written at that epoch).
    pub eval_with: EmaEvalWith,
}

/// One training run, as the core receives it (`NativeTrainConfig` in TS;
/// `ts/config` builds it from a validated user config).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrainConfig {
    /// A name in the model registry (checked when the model is built).
    #[cfg_attr(test, ts(as = "ts_contract::ModelName"))]
    pub model: String,
    pub num_classes: i64,
    pub method: MethodConfig,
    pub epochs: usize,
    pub batch_size: i64,
    pub optimizer: OptimizerConfig,
    pub augment: AugmentConfig,
    pub eval: EvalConfig,
    pub seed: i64,
    pub device: DeviceChoice,
    /// libtorch intra-op threads; null keeps libtorch's default.
    pub threads: Option<i32>,
    /// Folder the native loop writes checkpoints into (created if missing).
    pub out_dir: String,
    /// Checkpoint to resume weights from (safetensors), or null.
    pub init_checkpoint: Option<String>,
    /// When the per-epoch evaluation runs.
    #[serde(default)]
    pub eval_schedule: EvalSchedule,
    /// Continue a run from this resume file (its `checkpoints/resume.safetensors`).
    #[serde(default)]
    pub resume: Option<String>,
    /// Precision of the training step's forward/backward.
    #[serde(default)]
    pub precision: Precision,
    /// Memory layout of weights and batches (training and evaluation).
    #[serde(default)]
    pub memory_format: MemoryFormat,
    /// Weight averaging (EMA) of the run, or null for none.
    #[serde(default)]
    pub ema: Option<EmaConfig>,
    /// Extra training images mixed into every batch, or null for none.
    #[serde(default)]
    pub extra: Option<ExtraConfig>,
}

fn check(ok: bool, field: &str, message: &str) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(CoreError::config(field, message))
    }
}

fn check_ball(prefix: &str, epsilon: f64, step_size: f64, steps: usize) -> Result<()> {
    check(
        epsilon.is_finite() && (0.0..=1.0).contains(&epsilon),
        &format!("{prefix}.epsilon"),
        "expected a number in [0, 1]",
    )?;
    check(
        step_size.is_finite() && (0.0..=1.0).contains(&step_size),
        &format!("{prefix}.stepSize"),
        "expected a number in [0, 1] (inputs live in [0, 1])",
    )?;
    check(
        steps <= 10_000,
        &format!("{prefix}.steps"),
        "expected an integer in [0, 10000]",
    )
}

/// Bounds no real run needs to exceed; beyond them a value is a typo (or a
/// fuzzer), and accepting it would only fail later, less clearly.
pub mod limits {
    pub const MAX_EPOCHS: usize = 100_000;
    pub const MAX_BATCH: i64 = 65_536;
    pub const MAX_LR: f64 = 10.0;
    pub const MAX_WEIGHT_DECAY: f64 = 1.0;
    pub const MAX_GAMMA: f64 = 10.0;
    pub const MAX_BETA: f64 = 1_000.0;
    /// AWP's gamma: a perturbation as large as the weight itself.
    pub const MAX_AWP_GAMMA: f64 = 1.0;
    pub const MAX_CROP_PADDING: i64 = 64;
    pub const MAX_MILESTONES: usize = 100;
    pub const MAX_EVAL_SAMPLES: i64 = 10_000_000;
}

/// The cores this process may use: the upper bound for `threads` (more
/// threads than cores only slows libtorch down, and absurd counts hang or
/// make libgomp exit the process).
pub fn available_cores() -> i32 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as i32)
}

impl EvalConfig {
    pub fn validate(&self, prefix: &str) -> Result<()> {
        check_ball(prefix, self.epsilon, self.step_size, self.steps)?;
        check(
            (1..=limits::MAX_BATCH).contains(&self.batch_size),
            &format!("{prefix}.batchSize"),
            "expected an integer in [1, 65536]",
        )?;
        check(
            self.max_samples
                .is_none_or(|m| (1..=limits::MAX_EVAL_SAMPLES).contains(&m)),
            &format!("{prefix}.maxSamples"),
            "expected null or an integer in [1, 10000000]",
        )
    }
}

impl TrainConfig {
    pub fn from_json(json: &str) -> Result<Self> {
        let cfg: TrainConfig =
            serde_json::from_str(json).map_err(|e| CoreError::config("config", e.to_string()))?;
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn validate(&self) -> Result<()> {
        check(
            self.num_classes >= 2,
            "numClasses",
            "expected an integer >= 2",
        )?;
        check(
            self.num_classes <= 100_000,
            "numClasses",
            "expected an integer <= 100000",
        )?;
        check(
            (1..=limits::MAX_EPOCHS).contains(&self.epochs),
            "epochs",
            "expected an integer in [1, 100000]",
        )?;
        check(
            (1..=limits::MAX_BATCH).contains(&self.batch_size),
            "batchSize",
            "expected an integer in [1, 65536]",
        )?;
        let o = &self.optimizer;
        check(
            o.lr.is_finite() && o.lr > 0.0 && o.lr <= limits::MAX_LR,
            "optimizer.lr",
            "expected a number in (0, 10]",
        )?;
        check(
            o.milestones.len() <= limits::MAX_MILESTONES,
            "optimizer.milestones",
            "expected at most 100 milestones",
        )?;
        check(
            (0.0..1.0).contains(&o.momentum),
            "optimizer.momentum",
            "expected a number in [0, 1)",
        )?;
        check(
            (0.0..=limits::MAX_WEIGHT_DECAY).contains(&o.weight_decay),
            "optimizer.weightDecay",
            "expected a number in [0, 1]",
        )?;
        check(
            o.gamma.is_finite() && o.gamma > 0.0 && o.gamma <= limits::MAX_GAMMA,
            "optimizer.gamma",
            "expected a number in (0, 10]",
        )?;
        check(
            !o.nesterov || o.momentum > 0.0,
            "optimizer.nesterov",
            "nesterov needs momentum > 0",
        )?;
        check(
            o.schedule != LrSchedule::Cosine || o.milestones.is_empty(),
            "optimizer.milestones",
            "the cosine schedule takes no milestones; expected []",
        )?;
        if let Some(x) = &self.extra {
            check(!x.file.is_empty(), "extra.file", "expected a file path")?;
            check(
                x.fraction.is_finite() && x.fraction > 0.0 && x.fraction < 1.0,
                "extra.fraction",
                "expected a number in (0, 1)",
            )?;
            let extra = crate::sampler::extra_per_batch(self.batch_size, x.fraction);
            check(
                extra >= 1,
                "extra.fraction",
                &format!(
                    "{} of a batch of {} is no image (floor(batchSize * fraction) must be at least 1)",
                    x.fraction, self.batch_size
                ),
            )?;
        }
        check(
            (0..=limits::MAX_CROP_PADDING).contains(&self.augment.random_crop_padding),
            "augment.randomCropPadding",
            "expected an integer in [0, 64]",
        )?;
        self.eval.validate("eval")?;
        check(
            (1..=limits::MAX_EPOCHS).contains(&self.eval_schedule.every),
            "evalSchedule.every",
            "expected an integer in [1, 100000]",
        )?;
        check(
            self.eval_schedule.last_epochs <= limits::MAX_EPOCHS,
            "evalSchedule.lastEpochs",
            "expected an integer in [0, 100000]",
        )?;
        self.method.validate("method")?;
        if let Some(ema) = &self.ema {
            check(
                ema.decay.is_finite() && ema.decay > 0.0 && ema.decay < 1.0,
                "ema.decay",
                "expected a number in (0, 1)",
            )?;
            check(
                ema.warmup_steps <= 1_000_000_000,
                "ema.warmupSteps",
                "expected an integer in [0, 1000000000]",
            )?;
        }
        check(!self.out_dir.is_empty(), "outDir", "expected a folder path")?;
        let cores = available_cores();
        check(
            self.threads.is_none_or(|t| (1..=cores).contains(&t)),
            "threads",
            &format!(
                "expected null or an integer in [1, {cores}] (this machine has {cores} cores)"
            ),
        )
    }
}
