//! Evaluation in eval mode (running BatchNorm statistics, no dropout).
//!
//! - `evaluate`: clean and PGD accuracy on a held-out split, as model
//!   selection and the summary report them after each epoch.
//! - `evaluate_attacks`: the paper's table for any checkpoint (ours or a
//!   PyTorch state dict of a registered model): each attack's accuracy on
//!   the same images, and the per-point worst case (a point is robust only if
//!   it is classified correctly clean and under every attack), seeded and
//!   recorded (seed, settings, images, the checkpoint's checksum), with
//!   optional input normalisation in front of the model and the adversarial
//!   inputs saved for re-scoring.

//!
//! One job per file: `during_training` (the per-epoch evaluation and its
//! replay), `request` and `report` (the JSON contract), `normalize`,
//! `per_attack` (one attack over a split), `table` (all of them, combined
//! point by point), `evaluate_file` (the entry point for a checkpoint file),
//! `adversarial` (saving what was scored), `checksum`, and `autoattack/`.
//! `events` and `halving` sit below both the table and AutoAttack, so no
//! module imports one that imports it back.

mod adversarial;
pub mod autoattack;
mod checksum;
mod during_training;
mod evaluate_file;
mod events;
mod halving;
mod normalize;
mod per_attack;
pub(crate) mod report;
mod request;
mod table;

pub use adversarial::ADVERSARIAL_PREFIX;
pub use checksum::content_crc;
pub use during_training::{
    eval_samples, eval_seed, evaluate, evaluate_checkpoint, evaluate_observed, pgd_of,
};
pub use evaluate_file::evaluate_attacks;
pub use events::{EvalEvent, PROGRESS_EVERY};
pub use normalize::{Normalization, Normalized};
pub use report::{AttackResult, EvalReport, WorstCase};
pub use request::{images_digest, DataSource, EvalRequest, RunEval};
pub use table::{attack_table, attack_table_with_progress, ResumeSettings, Table, TableSettings};
