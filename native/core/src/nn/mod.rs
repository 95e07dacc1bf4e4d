//! Layers tch does not have in the form ST needs.

pub mod batch_norm;
pub mod init;
pub mod layout;
pub mod max_pool;

pub use batch_norm::BatchNorm2d;
