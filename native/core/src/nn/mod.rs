//! Layers tch does not have in the form ST needs.

pub mod batch_norm;
pub mod init;

pub use batch_norm::BatchNorm2d;
