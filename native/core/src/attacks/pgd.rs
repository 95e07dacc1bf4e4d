//! L-inf PGD with sign-gradient steps.
//!
//! `Pgd` is the attack of training (PGD-AT's inner maximisation) and of the
//! per-epoch evaluation: final iterate, random draws from the generator as
//! seeded by the caller. FGSM and CW-inf are configurations of it
//! (`Pgd::fgsm`, `AttackLoss::CwMargin`).
//!
//! `Descent` is the evaluation's batched engine behind the `Attack` trait
//! (`PgdAttack` here, `fgsm::Fgsm`, `cw::CwInf`): L-inf or L2 steps,
//! restarts, and per point the strongest input seen (`Keep`).

use super::{project, Attack, AttackContext, Keep, Norm, Work};
use crate::models::{Classifier, Mode};
use tch::{Kind, Tensor};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttackLoss {
    CrossEntropy,
    /// Carlini-Wagner margin: largest other logit minus the true logit.
    CwMargin,
}

#[derive(Debug, Clone)]
pub struct Pgd {
    pub epsilon: f64,
    pub step_size: f64,
    pub steps: usize,
    /// Uniform random start in the eps-ball (PGD); none for FGSM.
    pub random_start: bool,
    pub loss: AttackLoss,
}

impl Pgd {
    /// One step of size eps from the clean point.
    pub fn fgsm(epsilon: f64) -> Self {
        Pgd {
            epsilon,
            step_size: epsilon,
            steps: 1,
            random_start: false,
            loss: AttackLoss::CrossEntropy,
        }
    }

    pub fn name(&self) -> String {
        match (self.loss, self.steps, self.random_start) {
            (AttackLoss::CrossEntropy, 1, false) => "fgsm".into(),
            (AttackLoss::CrossEntropy, k, _) => format!("pgd-{k}"),
            (AttackLoss::CwMargin, k, _) => format!("cw-{k}"),
        }
    }

    fn objective(&self, logits: &Tensor, y: &Tensor) -> Tensor {
        match self.loss {
            // Summed cross-entropy, to be maximised. Sum, not mean: the sign
            // of the gradient is the same and it does not shrink with the batch.
            AttackLoss::CrossEntropy => logits.log_softmax(-1, None::<Kind>).nll_loss_nd::<Tensor>(
                y,
                None,
                tch::Reduction::Sum,
                -100,
            ),
            AttackLoss::CwMargin => {
                let true_logit = logits.gather(1, &y.view([-1, 1]), false).squeeze_dim(1);
                let onehot = y.one_hot(logits.size()[1]).to_kind(Kind::Bool);
                let others = logits
                    .masked_fill(&onehot, f64::NEG_INFINITY)
                    .amax([1], false);
                (others - true_logit).sum(None::<Kind>)
            }
        }
    }

    /// Adversarial inputs for (x, y), with the network in `mode` (Eval for
    /// evaluation; train mode without running-stat updates inside training).
    pub fn run(&self, net: &dyn Classifier, x: &Tensor, y: &Tensor, mode: &Mode) -> Tensor {
        self.run_reporting(net, x, y, mode, &mut |_| {})
    }

    /// `run`, reporting the steps done after each one (host-side counting
    /// only: the inputs are `run`'s bit for bit).
    pub fn run_reporting(
        &self,
        net: &dyn Classifier,
        x: &Tensor,
        y: &Tensor,
        mode: &Mode,
        report: &mut dyn FnMut(Work),
    ) -> Tensor {
        let x = x.detach();
        let mut x_adv = if self.random_start {
            project(
                &(&x + x.rand_like() * (2.0 * self.epsilon) - self.epsilon),
                &x,
                self.epsilon,
            )
        } else {
            x.shallow_clone()
        };
        let total = self.steps as u64;
        for step in 0..self.steps {
            let xv = x_adv.detach().set_requires_grad(true);
            let obj = self.objective(&net.forward(&xv, mode), y);
            let grad = Tensor::run_backward(&[&obj], &[&xv], false, false)
                .pop()
                .expect("one input");
            x_adv = project(
                &(xv.detach() + grad.sign() * self.step_size),
                &x,
                self.epsilon,
            );
            report(Work {
                done: step as u64 + 1,
                total,
            });
        }
        x_adv
    }
}

/// Per-sample objective the attack maximises: cross-entropy, or the CW
/// margin (largest other logit minus the true logit).
pub fn per_sample_loss(logits: &Tensor, y: &Tensor, loss: AttackLoss) -> Tensor {
    match loss {
        AttackLoss::CrossEntropy => logits.log_softmax(-1, None::<Kind>).nll_loss_nd::<Tensor>(
            y,
            None,
            tch::Reduction::None,
            -100,
        ),
        AttackLoss::CwMargin => {
            let true_logit = logits.gather(1, &y.view([-1, 1]), false).squeeze_dim(1);
            let onehot = y.one_hot(logits.size()[1]).to_kind(Kind::Bool);
            let others = logits
                .masked_fill(&onehot, f64::NEG_INFINITY)
                .amax([1], false);
            others - true_logit
        }
    }
}

/// Per point, the strongest input seen so far: misclassified beats
/// correctly classified; between two of the same kind, the higher loss wins
/// (a tie keeps the earlier one).
pub struct Strongest {
    pub x: Tensor,
    pub wrong: Tensor,
    pub loss: Tensor,
}

impl Strongest {
    pub fn offer(slot: &mut Option<Strongest>, x: &Tensor, wrong: &Tensor, loss: &Tensor) {
        match slot {
            None => {
                *slot = Some(Strongest {
                    x: x.detach().copy(),
                    wrong: wrong.shallow_clone(),
                    loss: loss.detach().copy(),
                })
            }
            Some(s) => {
                let replace = wrong.logical_and(&s.wrong.logical_not()).logical_or(
                    &wrong
                        .eq_tensor(&s.wrong)
                        .logical_and(&loss.detach().gt_tensor(&s.loss)),
                );
                let mut shape = vec![-1i64];
                shape.extend(std::iter::repeat_n(1, x.dim() - 1));
                s.x = x.detach().where_self(&replace.view(shape.as_slice()), &s.x);
                s.wrong = wrong.logical_or(&s.wrong);
                s.loss = loss.detach().where_self(&replace, &s.loss);
            }
        }
    }
}

/// The evaluation's batched descent: `restarts` runs of `steps` ascent
/// steps of size `step_size` in `norm` (from a uniform random start in the
/// ball, or from x), projected onto the ball ∩ [0,1], the network in eval
/// mode throughout. Restart `r` is seeded with `mix_seed(ctx.seed, r)`.
#[derive(Debug, Clone)]
pub struct Descent {
    pub norm: Norm,
    pub epsilon: f64,
    pub step_size: f64,
    pub steps: usize,
    pub restarts: usize,
    pub random_start: bool,
    pub loss: AttackLoss,
    pub keep: Keep,
}

impl Descent {
    pub fn run(&self, net: &dyn Classifier, x: &Tensor, y: &Tensor, ctx: &AttackContext) -> Tensor {
        self.run_reporting(net, x, y, ctx, &mut |_| {})
    }

    /// `run`, reporting the ascent steps done over all restarts.
    pub fn run_reporting(
        &self,
        net: &dyn Classifier,
        x: &Tensor,
        y: &Tensor,
        ctx: &AttackContext,
        report: &mut dyn FnMut(Work),
    ) -> Tensor {
        let x = x.detach();
        let mut best: Option<Strongest> = None;
        let total = (self.restarts.max(1) * self.steps) as u64;
        for r in 0..self.restarts.max(1) {
            if r > 0 && ctx.cancelled() {
                break;
            }
            tch::manual_seed(super::mix_seed(ctx.seed, r as i64));
            let mut x_adv = if self.random_start {
                self.norm.random_start(&x, self.epsilon)
            } else {
                x.shallow_clone()
            };
            for t in 0..=self.steps {
                let last = t == self.steps;
                // Every iterate is forwarded the same way (with the input
                // requiring grad), so a run with more steps sees exactly the
                // logits a shorter run saw at the same iterate.
                let xv = x_adv.detach().set_requires_grad(true);
                let logits = net.forward(&xv, &Mode::Eval);
                let per = per_sample_loss(&logits, y, self.loss);
                if last || self.keep == Keep::Best {
                    let wrong = logits.argmax(-1, false).ne_tensor(y);
                    Strongest::offer(&mut best, &xv, &wrong, &per);
                }
                if last || ctx.cancelled() {
                    break;
                }
                // Without a graph, libtorch's backward would crash the process.
                assert!(
                    per.requires_grad(),
                    "the attack's loss has no gradient (grad mode is off)"
                );
                let grad = Tensor::run_backward(&[&per.sum(None::<Kind>)], &[&xv], false, false)
                    .pop()
                    .expect("one input");
                x_adv = self.norm.project(
                    &(xv.detach() + self.norm.ascent(&grad, self.step_size)),
                    &x,
                    self.epsilon,
                );
                report(Work {
                    done: (r * self.steps + t + 1) as u64,
                    total,
                });
            }
        }
        report(Work { done: total, total });
        best.map_or(x, |b| b.x)
    }
}

/// PGD (Madry et al.) for evaluation: cross-entropy, random start, any
/// steps, step size and restarts, L-inf or L2.
#[derive(Debug, Clone)]
pub struct PgdAttack {
    pub norm: Norm,
    pub epsilon: f64,
    pub step_size: f64,
    pub steps: usize,
    pub restarts: usize,
    pub random_start: bool,
    pub keep: Keep,
}

impl Attack for PgdAttack {
    fn norm(&self) -> Norm {
        self.norm
    }
    fn epsilon(&self) -> f64 {
        self.epsilon
    }
    fn perturb_reporting(
        &self,
        net: &dyn Classifier,
        x: &Tensor,
        y: &Tensor,
        ctx: &AttackContext,
        report: &mut dyn FnMut(Work),
    ) -> Tensor {
        Descent {
            norm: self.norm,
            epsilon: self.epsilon,
            step_size: self.step_size,
            steps: self.steps,
            restarts: self.restarts,
            random_start: self.random_start,
            loss: AttackLoss::CrossEntropy,
            keep: self.keep,
        }
        .run_reporting(net, x, y, ctx, report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Tensor};

    /// A linear classifier, so input gradients have a closed form.
    struct Linear {
        w: Tensor,
    }
    impl Classifier for Linear {
        fn forward(&self, xs: &Tensor, _mode: &Mode) -> Tensor {
            xs.flatten(1, -1).matmul(&self.w.tr())
        }
    }

    fn setup() -> (Linear, Tensor, Tensor) {
        tch::manual_seed(0);
        let w = Tensor::randn([3, 8], (Kind::Double, Device::Cpu));
        let x = Tensor::rand([5, 1, 2, 4], (Kind::Double, Device::Cpu)) * 0.6 + 0.2;
        let y = Tensor::from_slice(&[0i64, 1, 2, 0, 1]);
        (Linear { w }, x, y)
    }

    fn ce(net: &Linear, x: &Tensor, y: &Tensor) -> Tensor {
        let logp = net.forward(x, &Mode::Eval).log_softmax(-1, None::<Kind>);
        logp.nll_loss_nd::<Tensor>(y, None, tch::Reduction::None, -100)
    }

    #[test]
    fn fgsm_matches_the_closed_form_on_a_linear_model() {
        let (net, x, y) = setup();
        let eps = 0.05;
        // d CE / dx = W^T (softmax(Wx) - onehot(y)), per sample.
        let p = net.forward(&x, &Mode::Eval).softmax(-1, None::<Kind>);
        let g = (p - y.one_hot(3).to_kind(Kind::Double))
            .matmul(&net.w)
            .view([5, 1, 2, 4]);
        let want = (&x + g.sign() * eps).clamp(0.0, 1.0);
        let got = Pgd::fgsm(eps).run(&net, &x, &y, &Mode::Eval);
        assert!(got.allclose(&want, 1e-12, 1e-12, false));
        // Ascent: every sample's loss went up.
        assert!(bool::try_from(ce(&net, &got, &y).gt_tensor(&ce(&net, &x, &y)).all()).unwrap());
        assert_eq!(Pgd::fgsm(eps).name(), "fgsm");
    }

    #[test]
    fn pgd_stays_in_the_ball_and_raises_the_loss_at_least_as_much_as_fgsm() {
        let (net, x, y) = setup();
        let eps = 0.1;
        let pgd = Pgd {
            epsilon: eps,
            step_size: 0.02,
            steps: 20,
            random_start: true,
            loss: AttackLoss::CrossEntropy,
        };
        let adv = pgd.run(&net, &x, &y, &Mode::Eval);
        assert!((&adv - &x).abs().max().double_value(&[]) <= eps + 1e-12);
        assert!(adv.min().double_value(&[]) >= 0.0 && adv.max().double_value(&[]) <= 1.0);
        let fgsm = Pgd::fgsm(eps).run(&net, &x, &y, &Mode::Eval);
        // For a linear model FGSM is optimal in the ball; PGD must reach it
        // up to its step granularity, and both beat the clean point.
        let total = |t: &Tensor| ce(&net, t, &y).sum(None::<Kind>).double_value(&[]);
        assert!(
            total(&adv) >= total(&fgsm) - 1e-2,
            "{} vs {}",
            total(&adv),
            total(&fgsm)
        );
        assert!(total(&adv) > total(&x) + 0.1);
        assert_eq!(pgd.name(), "pgd-20");
    }

    #[test]
    fn cw_attack_lowers_the_margin() {
        let (net, x, y) = setup();
        let margin = |t: &Tensor| {
            let l = net.forward(t, &Mode::Eval);
            let true_logit = l.gather(1, &y.view([-1, 1]), false).squeeze_dim(1);
            let onehot = y.one_hot(3).to_kind(Kind::Bool);
            true_logit - l.masked_fill(&onehot, f64::NEG_INFINITY).amax([1], false)
        };
        let cw = Pgd {
            epsilon: 0.1,
            step_size: 0.02,
            steps: 10,
            random_start: false,
            loss: AttackLoss::CwMargin,
        };
        let adv = cw.run(&net, &x, &y, &Mode::Eval);
        assert!(bool::try_from(margin(&adv).lt_tensor(&margin(&x)).all()).unwrap());
        assert_eq!(cw.name(), "cw-10");
    }
}
