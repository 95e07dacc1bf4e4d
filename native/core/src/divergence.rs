//! The `reg` discrepancies of Squeeze Training (method page §2), on logits.
//!
//! All three return the batch mean ("batchmean": sum over classes, mean over
//! samples). `symmkl` reproduces the reference exactly, including its detached
//! targets: 0.5 * (KL(sg(q) || p) + KL(sg(p) || q)). `js` and `l2` come from the
//! paper's text (the authors released only `symmkl`) and are their plain
//! closed forms with gradients through both arguments.

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

/// The `reg` discrepancy of Squeeze Training (method page §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
pub enum Reg {
    #[default]
    Symmkl,
    Js,
    L2,
}

/// KL(target || p) per sample, from log-probabilities: sum_k t_k (log t_k - log p_k).
fn kl_per_sample(log_target: &Tensor, log_p: &Tensor) -> Tensor {
    (log_target.exp() * (log_target - log_p)).sum_dim_intlist(-1, false, None::<Kind>)
}

/// The discrepancy between the predictions of two logit batches, per sample.
pub fn reg_per_sample(reg: Reg, logits_a: &Tensor, logits_b: &Tensor) -> Tensor {
    let lp = logits_a.log_softmax(-1, None::<Kind>);
    let lq = logits_b.log_softmax(-1, None::<Kind>);
    match reg {
        Reg::Symmkl => 0.5 * (kl_per_sample(&lq.detach(), &lp) + kl_per_sample(&lp.detach(), &lq)),
        Reg::Js => {
            // log m = log((p + q) / 2), computed in log space for stability.
            let log_m =
                Tensor::stack(&[&lp, &lq], 0).logsumexp([0], false) - std::f64::consts::LN_2;
            0.5 * (kl_per_sample(&lp, &log_m) + kl_per_sample(&lq, &log_m))
        }
        Reg::L2 => (lp.exp() - lq.exp())
            .square()
            .sum_dim_intlist(-1, false, None::<Kind>),
    }
}

/// Batch mean of `reg_per_sample`: the value ST adds to the loss.
pub fn reg_loss(reg: Reg, logits_a: &Tensor, logits_b: &Tensor) -> Tensor {
    reg_per_sample(reg, logits_a, logits_b).mean(None::<Kind>)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Closed forms in f64 on hand-made distributions (plain Rust, not libtorch).
    fn kl(p: &[f64], q: &[f64]) -> f64 {
        p.iter().zip(q).map(|(a, b)| a * (a / b).ln()).sum()
    }

    fn logits_of(p: &[f64]) -> Tensor {
        // log p is a valid logit vector for p.
        Tensor::from_slice(&p.iter().map(|v| v.ln()).collect::<Vec<_>>())
            .to_kind(Kind::Double)
            .view([1, -1])
    }

    const P: [f64; 4] = [0.7, 0.1, 0.15, 0.05];
    const Q: [f64; 4] = [0.25, 0.25, 0.4, 0.1];

    fn value(reg: Reg) -> f64 {
        reg_loss(reg, &logits_of(&P), &logits_of(&Q)).double_value(&[])
    }

    #[test]
    fn symmkl_matches_closed_form() {
        let want = 0.5 * (kl(&P, &Q) + kl(&Q, &P));
        assert!(
            (value(Reg::Symmkl) - want).abs() < 1e-6,
            "{} vs {want}",
            value(Reg::Symmkl)
        );
    }

    #[test]
    fn js_matches_closed_form() {
        let m: Vec<f64> = P.iter().zip(&Q).map(|(a, b)| 0.5 * (a + b)).collect();
        let want = 0.5 * (kl(&P, &m) + kl(&Q, &m));
        assert!(
            (value(Reg::Js) - want).abs() < 1e-6,
            "{} vs {want}",
            value(Reg::Js)
        );
    }

    #[test]
    fn l2_matches_closed_form() {
        let want: f64 = P.iter().zip(&Q).map(|(a, b)| (a - b).powi(2)).sum();
        assert!((value(Reg::L2) - want).abs() < 1e-6);
    }

    #[test]
    fn all_regs_are_symmetric_and_zero_on_equal_inputs() {
        for reg in [Reg::Symmkl, Reg::Js, Reg::L2] {
            let ab = reg_loss(reg, &logits_of(&P), &logits_of(&Q)).double_value(&[]);
            let ba = reg_loss(reg, &logits_of(&Q), &logits_of(&P)).double_value(&[]);
            let aa = reg_loss(reg, &logits_of(&P), &logits_of(&P)).double_value(&[]);
            assert!((ab - ba).abs() < 1e-9, "{reg:?} not symmetric");
            assert!(aa.abs() < 1e-9, "{reg:?} not zero on equal inputs");
        }
    }

    #[test]
    fn batchmean_averages_over_samples() {
        let a = Tensor::cat(&[logits_of(&P), logits_of(&Q)], 0);
        let b = Tensor::cat(&[logits_of(&Q), logits_of(&Q)], 0);
        let want = 0.5 * (0.5 * (kl(&P, &Q) + kl(&Q, &P)));
        assert!((reg_loss(Reg::Symmkl, &a, &b).double_value(&[]) - want).abs() < 1e-6);
    }

    /// The reference's gradient: with detached targets, d/dp of
    /// 0.5*KL(sg(q)||p) + 0.5*KL(sg(p)||q) w.r.t. logits a is 0.5*(p - q)/B
    /// (the second term contributes nothing to a). Full-gradient symmetric KL
    /// would differ, so this pins the detach.
    #[test]
    fn symmkl_gradient_has_detached_targets() {
        let a = logits_of(&P).set_requires_grad(true);
        let b = logits_of(&Q);
        reg_loss(Reg::Symmkl, &a, &b).backward();
        let g = a.grad();
        for k in 0..4 {
            let want = 0.5 * (P[k] - Q[k]);
            let got = g.double_value(&[0, k as i64]);
            assert!((got - want).abs() < 1e-6, "class {k}: {got} vs {want}");
        }
    }
}
