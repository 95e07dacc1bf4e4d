//! The baseline methods recomputed independently: plain CE, and PGD-AT as CE
//! at the PGD point found with the same random start.

mod common;
use common::*;
use st_core::attacks::pgd::{AttackLoss, Pgd};
use st_core::config::PgdAtConfig;
use st_core::methods::{natural::Natural, pgd_at::PgdAt, Method};
use st_core::models::{Branches, Classifier, Mode};
use tch::Kind;

#[test]
fn natural_is_cross_entropy_on_the_benign_batch() {
    let _rng = seeded(2);
    let (_vs, net) = small_cnn_no_dropout();
    let x = images(16, [1, 28, 28], Kind::Float);
    let y = labels(16, 10);
    let out = Natural.loss(&net, &x, &y);
    let logits = net.forward(&x, &Mode::Train(Branches::single(false)));
    let want = logits.cross_entropy_for_logits(&y).double_value(&[]);
    assert!((out.loss.double_value(&[]) - want).abs() < 1e-5);
    assert!(out.parts.ce_adv.is_none() && out.parts.ce_benign.is_some());
}

#[test]
fn pgd_at_is_cross_entropy_at_the_pgd_point() {
    let _rng = seeded(1);
    let (_vs, net) = small_cnn_no_dropout();
    let x = images(16, [1, 28, 28], Kind::Float);
    let y = labels(16, 10);
    let cfg = PgdAtConfig {
        epsilon: 0.2,
        step_size: 0.05,
        steps: 5,
    };
    tch::manual_seed(9);
    let out = PgdAt::new(cfg.clone()).loss(&net, &x, &y);
    tch::manual_seed(9);
    let attack = Pgd {
        epsilon: cfg.epsilon,
        step_size: cfg.step_size,
        steps: cfg.steps,
        random_start: true,
        loss: AttackLoss::CrossEntropy,
    };
    let x_adv = attack.run(&net, &x, &y, &Mode::Train(Branches::single(false)));
    assert!((&x_adv - &x).abs().max().double_value(&[]) <= cfg.epsilon + 1e-6);
    let adv_logits = net.forward(&x_adv, &Mode::Train(Branches::single(false)));
    let want = adv_logits.cross_entropy_for_logits(&y).double_value(&[]);
    assert!((out.loss.double_value(&[]) - want).abs() < 1e-5);
    let clean = net
        .forward(&x, &Mode::Eval)
        .cross_entropy_for_logits(&y)
        .double_value(&[]);
    assert!(
        want > clean,
        "the PGD point must have higher loss: {want} vs {clean}"
    );
}
