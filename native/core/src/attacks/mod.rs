//! Attacks: an attack turns (network, x, y) into adversarial inputs inside
//! the eps-ball around x (L-inf or L2) and inside [0,1], with the network in
//! eval mode (running BatchNorm statistics, no dropout).
//!
//! One trait, one file per attack: `fgsm` (one step of size eps from the
//! clean point), `pgd` (random start, steps, step size, restarts), `cw`
//! (PGD on the Carlini-Wagner margin). They share one batched descent
//! (`pgd::Descent`) that keeps, per point, the strongest input it has seen:
//! a misclassified one before a correctly classified one, else the one with
//! the higher loss. So more steps or more restarts never raise accuracy:
//! a run with more steps visits every iterate a run with fewer visits (same
//! seed), and restart `r` draws the same start whatever the restart count.
//! `Keep::Last` scores the final iterate instead, as the papers' code and
//! `torchattacks` do.
//!
//! `Pgd` (in `pgd`) is the training-time and per-epoch attack: the methods
//! and the per-epoch evaluation use it, unchanged.

pub mod apgd;
pub mod cw;
pub mod fab;
pub mod fgsm;
pub mod pgd;
pub mod square;

use crate::error::{CoreError, Result};
use crate::models::Classifier;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};
use tch::Tensor;

/// Projection onto B_eps[x] ∩ [0,1] (L-inf).
pub fn project(x_new: &Tensor, x: &Tensor, epsilon: f64) -> Tensor {
    x_new
        .min_other(&(x + epsilon))
        .max_other(&(x - epsilon))
        .clamp(0.0, 1.0)
}

/// Per-sample L2 norm of a batch, shaped N×1×…×1 for broadcasting.
pub fn l2_norms(t: &Tensor) -> Tensor {
    let n = t.size()[0];
    let mut shape = vec![n];
    shape.extend(std::iter::repeat_n(1, t.dim() - 1));
    t.reshape([n, -1])
        .square()
        .sum_dim_intlist([1i64].as_slice(), false, None::<tch::Kind>)
        .sqrt()
        .view(shape.as_slice())
}

/// Projection onto B_eps[x] ∩ [0,1] in L2: the perturbation is scaled down
/// to norm eps, then the point is clipped to [0,1] (which only shortens it).
pub fn project_l2(x_new: &Tensor, x: &Tensor, epsilon: f64) -> Tensor {
    let delta = x_new - x;
    let norms = l2_norms(&delta);
    let factor = (norms.clamp_min(1e-12).reciprocal() * epsilon).clamp_max(1.0);
    (x + delta * factor).clamp(0.0, 1.0)
}

/// The threat model's norm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
pub enum Norm {
    #[default]
    Linf,
    L2,
}

impl Norm {
    pub fn project(self, x_new: &Tensor, x: &Tensor, epsilon: f64) -> Tensor {
        match self {
            Norm::Linf => project(x_new, x, epsilon),
            Norm::L2 => project_l2(x_new, x, epsilon),
        }
    }

    /// The steepest-ascent direction of size `size` for gradient `g`: the
    /// sign for L-inf, the normalised gradient for L2 (zero stays zero).
    pub fn ascent(self, g: &Tensor, size: f64) -> Tensor {
        match self {
            Norm::Linf => g.sign() * size,
            Norm::L2 => g / l2_norms(g).clamp_min(1e-12) * size,
        }
    }

    /// A uniform random start: uniform in the box for L-inf (as Madry et
    /// al.), a uniform direction with a uniform radius in [0, eps] for L2
    /// (as torchattacks' PGDL2).
    pub fn random_start(self, x: &Tensor, epsilon: f64) -> Tensor {
        match self {
            Norm::Linf => project(&(x + x.rand_like() * (2.0 * epsilon) - epsilon), x, epsilon),
            Norm::L2 => {
                let d = x.randn_like();
                let n = l2_norms(&d).clamp_min(1e-12);
                let r = n.rand_like();
                project_l2(&(x + d / n * r * epsilon), x, epsilon)
            }
        }
    }

    /// Largest per-point distance |x_adv - x| in this norm.
    pub fn max_distance(self, x_adv: &Tensor, x: &Tensor) -> f64 {
        let d = x_adv - x;
        match self {
            Norm::Linf => d.abs().max().double_value(&[]),
            Norm::L2 => l2_norms(&d).max().double_value(&[]),
        }
    }
}

/// Which input an attack reports per point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
pub enum Keep {
    /// The strongest input seen over all iterates and restarts (default).
    #[default]
    Best,
    /// The final iterate of each restart (the strongest over restarts), as
    /// the reference code and torchattacks report.
    Last,
}

/// An attack as the evaluation receives it (JSON, from TS). Names are what
/// reports show; they must be unique within one evaluation.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
// Unknown fields are refused; ts-rs cannot parse the attribute on an enum, and
// its derive only exists in unit-test builds, which do not need it.
#[cfg_attr(not(test), serde(deny_unknown_fields))]
pub enum AttackSpec {
    /// No attack: accuracy on the clean inputs.
    Clean { name: String },
    /// One step of size eps from the clean point, no random start.
    Fgsm {
        name: String,
        norm: Norm,
        epsilon: f64,
        keep: Keep,
    },
    /// Projected gradient ascent on cross-entropy.
    Pgd {
        name: String,
        norm: Norm,
        epsilon: f64,
        step_size: f64,
        steps: usize,
        restarts: usize,
        random_start: bool,
        keep: Keep,
    },
    /// CW-inf: PGD on the Carlini-Wagner margin (largest other logit minus
    /// the true logit), L-inf.
    Cw {
        name: String,
        epsilon: f64,
        step_size: f64,
        steps: usize,
        restarts: usize,
        random_start: bool,
        keep: Keep,
    },
    /// The run's own per-epoch evaluation (its `eval` settings, final
    /// iterate, random starts seeded as training seeded them): reproduces
    /// the accuracy the run logged for the checkpoint's epoch.
    Run { name: String },
    /// APGD on cross-entropy (AutoAttack's first stage), `eot_iter`
    /// gradients averaged per step (1; 20 for randomised models).
    ApgdCe {
        name: String,
        norm: Norm,
        epsilon: f64,
        steps: usize,
        restarts: usize,
        eot_iter: usize,
    },
    /// APGD on the untargeted DLR loss (the `rand` version's second stage).
    ApgdDlr {
        name: String,
        norm: Norm,
        epsilon: f64,
        steps: usize,
        restarts: usize,
        eot_iter: usize,
    },
    /// APGD on the targeted DLR loss, one run per target class (the
    /// `targets` classes with the highest clean logits after the true one).
    ApgdT {
        name: String,
        norm: Norm,
        epsilon: f64,
        steps: usize,
        restarts: usize,
        targets: usize,
    },
    /// FAB, targeted (FAB-T): minimum-norm adversarials towards each of the
    /// `targets` classes; a point counts as broken only within eps.
    FabT {
        name: String,
        norm: Norm,
        epsilon: f64,
        steps: usize,
        restarts: usize,
        targets: usize,
    },
    /// Square Attack: score-based random search, no gradients.
    Square {
        name: String,
        norm: Norm,
        epsilon: f64,
        queries: usize,
        restarts: usize,
    },
    /// AutoAttack (Croce & Hein, 2020): its components in sequence, each on
    /// the points still robust (`crate::autoattack`).
    AutoAttack {
        name: String,
        norm: Norm,
        epsilon: f64,
        version: AutoAttackVersion,
    },
}

/// Which AutoAttack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
pub enum AutoAttackVersion {
    /// APGD-CE, APGD-T (9 targets), FAB-T (9 targets), Square (5000
    /// queries), 100 iterations and 1 restart each: for deterministic models.
    #[default]
    Standard,
    /// APGD-CE and APGD-DLR with 20 gradients averaged per step
    /// (expectation over transformation): for randomised models.
    Rand,
}

/// Largest Square query budget and EOT count an evaluation takes.
pub const MAX_QUERIES: usize = 100_000;
pub const MAX_EOT: usize = 1_000;

/// Upper bounds no evaluation needs to exceed.
pub const MAX_RESTARTS: usize = 1_000;
pub const MAX_STEPS: usize = 10_000;
/// L2 radii are in [0,1]-pixel units over the whole image.
pub const MAX_L2_EPSILON: f64 = 1_000.0;

fn bad(field: String, message: &str) -> CoreError {
    CoreError::config(field, message)
}

impl AttackSpec {
    /// Whether this attack runs Square (alone or as an AutoAttack stage).
    pub fn runs_square(&self) -> bool {
        matches!(
            self,
            AttackSpec::Square { .. }
                | AttackSpec::AutoAttack {
                    version: AutoAttackVersion::Standard,
                    ..
                }
        )
    }

    pub fn name(&self) -> &str {
        match self {
            AttackSpec::Clean { name }
            | AttackSpec::Fgsm { name, .. }
            | AttackSpec::Pgd { name, .. }
            | AttackSpec::Cw { name, .. }
            | AttackSpec::Run { name }
            | AttackSpec::ApgdCe { name, .. }
            | AttackSpec::ApgdDlr { name, .. }
            | AttackSpec::ApgdT { name, .. }
            | AttackSpec::FabT { name, .. }
            | AttackSpec::Square { name, .. }
            | AttackSpec::AutoAttack { name, .. } => name,
        }
    }

    /// Checks the ranges; `at` names the spec in errors (e.g. `attacks[2]`).
    pub fn validate(&self, at: &str) -> Result<()> {
        let name = self.name();
        if name.is_empty() || name.len() > 100 || name.chars().any(|c| c.is_control()) {
            return Err(bad(
                format!("{at}.name"),
                "expected 1 to 100 printable characters",
            ));
        }
        let ball = |norm: Norm, eps: f64| -> Result<()> {
            let max = match norm {
                Norm::Linf => 1.0,
                Norm::L2 => MAX_L2_EPSILON,
            };
            if eps.is_finite() && (0.0..=max).contains(&eps) {
                Ok(())
            } else {
                Err(bad(
                    format!("{at}.epsilon"),
                    &format!("expected a number in [0, {max}] ([0,1] pixel units)"),
                ))
            }
        };
        let steps_ok = |step: f64, steps: usize, restarts: usize| -> Result<()> {
            if !(step.is_finite() && (0.0..=MAX_L2_EPSILON).contains(&step)) {
                return Err(bad(
                    format!("{at}.stepSize"),
                    "expected a non-negative number",
                ));
            }
            if steps > MAX_STEPS {
                return Err(bad(
                    format!("{at}.steps"),
                    "expected an integer in [0, 10000]",
                ));
            }
            if !(1..=MAX_RESTARTS).contains(&restarts) {
                return Err(bad(
                    format!("{at}.restarts"),
                    "expected an integer in [1, 1000]",
                ));
            }
            Ok(())
        };
        match *self {
            AttackSpec::Clean { .. } | AttackSpec::Run { .. } => Ok(()),
            AttackSpec::Fgsm { norm, epsilon, .. } => ball(norm, epsilon),
            AttackSpec::Pgd {
                norm,
                epsilon,
                step_size,
                steps,
                restarts,
                ..
            } => {
                ball(norm, epsilon)?;
                steps_ok(step_size, steps, restarts)
            }
            AttackSpec::Cw {
                epsilon,
                step_size,
                steps,
                restarts,
                ..
            } => {
                ball(Norm::Linf, epsilon)?;
                steps_ok(step_size, steps, restarts)
            }
            AttackSpec::ApgdCe {
                norm,
                epsilon,
                steps,
                restarts,
                eot_iter,
                ..
            }
            | AttackSpec::ApgdDlr {
                norm,
                epsilon,
                steps,
                restarts,
                eot_iter,
                ..
            } => {
                ball(norm, epsilon)?;
                steps_ok(0.0, steps, restarts)?;
                if !(1..=MAX_EOT).contains(&eot_iter) {
                    return Err(bad(
                        format!("{at}.eotIter"),
                        "expected an integer in [1, 1000]",
                    ));
                }
                Ok(())
            }
            AttackSpec::ApgdT {
                norm,
                epsilon,
                steps,
                restarts,
                targets,
                ..
            }
            | AttackSpec::FabT {
                norm,
                epsilon,
                steps,
                restarts,
                targets,
                ..
            } => {
                ball(norm, epsilon)?;
                steps_ok(0.0, steps, restarts)?;
                if targets < 1 {
                    return Err(bad(
                        format!("{at}.targets"),
                        "expected at least 1 target class",
                    ));
                }
                Ok(())
            }
            AttackSpec::Square {
                norm,
                epsilon,
                queries,
                restarts,
                ..
            } => {
                ball(norm, epsilon)?;
                steps_ok(0.0, 0, restarts)?;
                if !(1..=MAX_QUERIES).contains(&queries) {
                    return Err(bad(
                        format!("{at}.queries"),
                        "expected an integer in [1, 100000]",
                    ));
                }
                Ok(())
            }
            AttackSpec::AutoAttack { norm, epsilon, .. } => ball(norm, epsilon),
        }
    }

    /// The classes an attack needs: DLR divides by the gap between the
    /// largest and the third largest logit (targeted: the mean of the third
    /// and fourth), and each target is another class.
    pub fn validate_classes(&self, at: &str, num_classes: i64) -> Result<()> {
        let need = |min: i64, what: &str| -> Result<()> {
            if num_classes < min {
                Err(bad(
                    at.to_string(),
                    &format!("{what} needs at least {min} classes; this model has {num_classes}"),
                ))
            } else {
                Ok(())
            }
        };
        match *self {
            AttackSpec::ApgdDlr { .. } => need(3, "the DLR loss"),
            AttackSpec::ApgdT { targets, .. } | AttackSpec::FabT { targets, .. } => {
                if matches!(self, AttackSpec::ApgdT { .. }) {
                    need(4, "the targeted DLR loss")?;
                }
                if targets as i64 > num_classes - 1 {
                    return Err(bad(
                        format!("{at}.targets"),
                        &format!("expected at most {} (the other classes)", num_classes - 1),
                    ));
                }
                Ok(())
            }
            AttackSpec::AutoAttack { version, .. } => match version {
                AutoAttackVersion::Standard => need(4, "AutoAttack's APGD-T (targeted DLR)"),
                AutoAttackVersion::Rand => need(3, "AutoAttack's APGD-DLR"),
            },
            _ => Ok(()),
        }
    }

    /// The attack this spec describes; None for `clean`, `run` and
    /// `autoAttack`, which the evaluation handles itself.
    pub fn build(&self) -> Option<Box<dyn Attack>> {
        let apgd = |norm, epsilon, steps, restarts, loss, eot_iter| -> Option<Box<dyn Attack>> {
            Some(Box::new(apgd::Apgd {
                norm,
                epsilon,
                steps,
                restarts,
                loss,
                eot_iter,
                rho: 0.75,
            }))
        };
        match *self {
            AttackSpec::Clean { .. } | AttackSpec::Run { .. } | AttackSpec::AutoAttack { .. } => {
                None
            }
            AttackSpec::ApgdCe {
                norm,
                epsilon,
                steps,
                restarts,
                eot_iter,
                ..
            }
            | AttackSpec::ApgdDlr {
                norm,
                epsilon,
                steps,
                restarts,
                eot_iter,
                ..
            } => {
                let loss = if matches!(self, AttackSpec::ApgdCe { .. }) {
                    apgd::ApgdLoss::CrossEntropy
                } else {
                    apgd::ApgdLoss::Dlr
                };
                apgd(norm, epsilon, steps, restarts, loss, eot_iter)
            }
            AttackSpec::ApgdT {
                norm,
                epsilon,
                steps,
                restarts,
                targets,
                ..
            } => apgd(
                norm,
                epsilon,
                steps,
                restarts,
                apgd::ApgdLoss::DlrTargeted { targets },
                1,
            ),
            AttackSpec::FabT {
                norm,
                epsilon,
                steps,
                restarts,
                targets,
                ..
            } => Some(Box::new(fab::Fab {
                norm,
                epsilon,
                steps,
                restarts,
                targets: Some(targets),
                alpha_max: 0.1,
                eta: 1.05,
                beta: 0.9,
            })),
            AttackSpec::Square {
                norm,
                epsilon,
                queries,
                restarts,
                ..
            } => Some(Box::new(square::Square {
                norm,
                epsilon,
                queries,
                restarts,
                p_init: 0.8,
            })),
            AttackSpec::Fgsm {
                norm,
                epsilon,
                keep,
                ..
            } => Some(Box::new(fgsm::Fgsm {
                norm,
                epsilon,
                keep,
            })),
            AttackSpec::Pgd {
                norm,
                epsilon,
                step_size,
                steps,
                restarts,
                random_start,
                keep,
                ..
            } => Some(Box::new(pgd::PgdAttack {
                norm,
                epsilon,
                step_size,
                steps,
                restarts,
                random_start,
                keep,
            })),
            AttackSpec::Cw {
                epsilon,
                step_size,
                steps,
                restarts,
                random_start,
                keep,
                ..
            } => Some(Box::new(cw::CwInf {
                epsilon,
                step_size,
                steps,
                restarts,
                random_start,
                keep,
            })),
        }
    }
}

/// What an attack gets besides the batch: the seed of its random draws
/// for this batch, and a flag that asks it to stop early (its output is
/// then discarded).
pub struct AttackContext<'a> {
    pub seed: i64,
    pub cancel: Option<&'a AtomicBool>,
}

impl AttackContext<'_> {
    pub fn cancelled(&self) -> bool {
        self.cancel.is_some_and(|c| c.load(Ordering::Relaxed))
    }
}

/// How much of one `perturb` call's work is done: `done` of `total` units
/// (iterations or queries, over every restart and target class). Reports
/// of one call never go back and the last one has `done == total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Work {
    pub done: u64,
    pub total: u64,
}

impl Work {
    /// `done / total` (1 for a call with nothing to do).
    pub fn fraction(self) -> f64 {
        if self.total == 0 {
            1.0
        } else {
            self.done.min(self.total) as f64 / self.total as f64
        }
    }
}

/// An evaluation attack: adversarial inputs for a batch.
pub trait Attack: Send + Sync {
    /// The threat model's norm and radius.
    fn norm(&self) -> Norm;
    fn epsilon(&self) -> f64;
    /// Inputs of x's shape, within eps of x (in `norm`) and within [0,1],
    /// found with `net` in eval mode. Random draws come from libtorch's
    /// generator seeded from `ctx.seed` (the same seed gives the same inputs
    /// on the same device).
    fn perturb(&self, net: &dyn Classifier, x: &Tensor, y: &Tensor, ctx: &AttackContext) -> Tensor {
        self.perturb_reporting(net, x, y, ctx, &mut |_| {})
    }
    /// `perturb`, telling `report` as it goes how much of its work is done,
    /// so that a batch that takes hours shows progress. The inputs are
    /// `perturb`'s bit for bit: reporting counts loop iterations on the host
    /// only (no tensor op, no random draw, no read from the device).
    fn perturb_reporting(
        &self,
        net: &dyn Classifier,
        x: &Tensor,
        y: &Tensor,
        ctx: &AttackContext,
        report: &mut dyn FnMut(Work),
    ) -> Tensor;
}

/// SplitMix64: decorrelated seeds from (seed, index) pairs.
pub fn mix_seed(seed: i64, index: i64) -> i64 {
    let mut z = (seed as u64)
        .wrapping_add((index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15))
        .wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)) as i64
}
