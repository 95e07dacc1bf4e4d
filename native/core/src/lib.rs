//! st-core: the numerics of st-native on libtorch (through `tch`).
//!
//! Pure Rust, no Node: everything here is testable with `cargo test`. The napi
//! binding (`native/node`) only converts types and spawns work.
//!
//! Layout: `models` (architectures + registry), `nn` (layers tch lacks:
//! per-branch BatchNorm), `divergence` (the ST `reg` functions), `methods`
//! (a method turns a batch into a loss), `attacks` (an attack turns a batch
//! into adversarial inputs), `data`, `train`, `eval`, `checkpoint`, `events`.

pub mod allocator;
pub mod attacks;
pub use eval::autoattack;
pub mod checkpoint;
pub mod config;
pub mod data;
pub mod device;
pub mod device_stats;
pub mod distributed;
pub mod divergence;
pub mod ema;
pub mod error;
pub mod eval;
pub mod events;
pub mod extra;
pub mod memory;
pub mod methods;
pub mod models;
pub mod nn;
pub mod optim;
pub mod precision;
pub mod resume;
pub mod sampler;
pub mod state_lock;
pub mod train;

pub use error::{CoreError, Result};
