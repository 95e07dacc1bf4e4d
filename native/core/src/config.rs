//! The run configuration the core accepts: the serde mirror of
//! `ts/native-types.ts` (`NativeTrainConfig`). TS validates first with zod;
//! unknown fields are rejected here too, and `validate` re-checks the ranges
//! the numerics rely on so the core is safe to call on its own.

use crate::divergence::Reg;
use crate::error::{CoreError, Result};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DeviceChoice {
    #[default]
    Auto,
    Cpu,
    Cuda,
}

/// How ST forwards its two branches (see `methods::st`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Branches {
    /// One stacked forward/backward with per-branch BatchNorm statistics.
    #[default]
    Batched,
    /// One forward per branch, as the reference code does.
    Separate,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StConfig {
    pub reg: Reg,
    pub beta: f64,
    pub epsilon: f64,
    pub step_size: f64,
    pub steps: usize,
    #[serde(default)]
    pub branches: Branches,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PgdAtConfig {
    pub epsilon: f64,
    pub step_size: f64,
    pub steps: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum MethodConfig {
    St(StConfig),
    Natural {},
    PgdAt(PgdAtConfig),
}

impl MethodConfig {
    pub fn name(&self) -> &'static str {
        match self {
            MethodConfig::St(_) => "st",
            MethodConfig::Natural {} => "natural",
            MethodConfig::PgdAt(_) => "pgd_at",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OptimizerConfig {
    pub lr: f64,
    pub momentum: f64,
    pub weight_decay: f64,
    pub nesterov: bool,
    /// 1-based epochs after which the learning rate is multiplied by `gamma`
    /// (PyTorch `MultiStepLR` stepped once per epoch).
    pub milestones: Vec<usize>,
    pub gamma: f64,
}

impl OptimizerConfig {
    /// Learning rate used during 1-based `epoch`.
    pub fn lr_at(&self, epoch: usize) -> f64 {
        let decays = self.milestones.iter().filter(|&&m| m < epoch).count();
        self.lr * self.gamma.powi(decays as i32)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AugmentConfig {
    pub random_crop_padding: i64,
    pub horizontal_flip: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EvalConfig {
    pub epsilon: f64,
    pub step_size: f64,
    pub steps: usize,
    pub random_start: bool,
    pub batch_size: i64,
    pub max_samples: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrainConfig {
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
    pub threads: Option<i32>,
    pub out_dir: String,
    pub init_checkpoint: Option<String>,
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
        step_size.is_finite() && step_size >= 0.0,
        &format!("{prefix}.stepSize"),
        "expected a number >= 0",
    )?;
    check(
        steps <= 10_000,
        &format!("{prefix}.steps"),
        "expected an integer in [0, 10000]",
    )
}

impl EvalConfig {
    pub fn validate(&self, prefix: &str) -> Result<()> {
        check_ball(prefix, self.epsilon, self.step_size, self.steps)?;
        check(
            self.batch_size >= 1,
            &format!("{prefix}.batchSize"),
            "expected an integer >= 1",
        )?;
        check(
            self.max_samples.is_none_or(|m| m >= 1),
            &format!("{prefix}.maxSamples"),
            "expected null or an integer >= 1",
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
        check(self.epochs >= 1, "epochs", "expected an integer >= 1")?;
        check(
            self.batch_size >= 1,
            "batchSize",
            "expected an integer >= 1",
        )?;
        let o = &self.optimizer;
        check(
            o.lr.is_finite() && o.lr > 0.0,
            "optimizer.lr",
            "expected a number > 0",
        )?;
        check(
            (0.0..1.0).contains(&o.momentum),
            "optimizer.momentum",
            "expected a number in [0, 1)",
        )?;
        check(
            o.weight_decay.is_finite() && o.weight_decay >= 0.0,
            "optimizer.weightDecay",
            "expected a number >= 0",
        )?;
        check(
            o.gamma.is_finite() && o.gamma > 0.0,
            "optimizer.gamma",
            "expected a number > 0",
        )?;
        check(
            !o.nesterov || o.momentum > 0.0,
            "optimizer.nesterov",
            "nesterov needs momentum > 0",
        )?;
        check(
            self.augment.random_crop_padding >= 0,
            "augment.randomCropPadding",
            "expected an integer >= 0",
        )?;
        self.eval.validate("eval")?;
        match &self.method {
            MethodConfig::St(st) => {
                check_ball("method", st.epsilon, st.step_size, st.steps)?;
                check(
                    st.beta.is_finite() && st.beta >= 0.0,
                    "method.beta",
                    "expected a number >= 0",
                )?;
            }
            MethodConfig::PgdAt(p) => check_ball("method", p.epsilon, p.step_size, p.steps)?,
            MethodConfig::Natural {} => {}
        }
        check(!self.out_dir.is_empty(), "outDir", "expected a folder path")?;
        check(
            self.threads.is_none_or(|t| t >= 1),
            "threads",
            "expected null or an integer >= 1",
        )
    }
}
