//! One error enum for the core. Messages name the field, file or step that is
//! wrong and what was expected; the binding maps each variant to a stable code.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum CoreError {
    /// A configuration value the core cannot use (the TS schema should have
    /// caught it first; this is the second line of defence).
    #[error("invalid config: {field}: {message}")]
    InvalidConfig { field: String, message: String },

    /// Dataset buffers that do not match their declared shape or labels.
    #[error("invalid data: {0}")]
    InvalidData(String),

    /// A checkpoint that cannot be read or does not fit the model.
    #[error("checkpoint {path}: {message}")]
    Checkpoint { path: String, message: String },

    /// Training diverged; the last good checkpoint is left untouched.
    #[error("loss became {value} at epoch {epoch}, step {step}; stopped without overwriting checkpoints (try a lower learning rate or beta)")]
    NonFiniteLoss {
        epoch: usize,
        step: usize,
        value: f64,
    },

    /// The weights hold NaN or infinity (a too large learning rate or step
    /// size); nothing was written, the last good checkpoints stay.
    #[error("the weights became non-finite ({tensor} holds NaN or infinity) by the end of epoch {epoch}; stopped without overwriting checkpoints (try a lower learning rate or step size)")]
    NonFiniteWeights { epoch: usize, tensor: String },

    /// The configuration cannot fit in the memory available (estimated
    /// before any work), or libtorch could not allocate.
    #[error("out of memory: {0}")]
    OutOfMemory(String),

    /// Another live process owns a file this work must write (a resumable
    /// state): refused at once instead of sharing it.
    #[error("{path}: {message}")]
    Locked { path: String, message: String },

    #[error("device: {0}")]
    Device(String),

    /// Data-parallel training: bad launcher variables, a rendezvous that
    /// failed, or a collective that failed or timed out (another rank died).
    #[error("data-parallel: {0}")]
    Distributed(String),

    #[error("io: {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },

    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}

impl CoreError {
    pub fn config(field: impl Into<String>, message: impl Into<String>) -> Self {
        CoreError::InvalidConfig {
            field: field.into(),
            message: message.into(),
        }
    }

    /// A stable, machine-readable code for each kind of failure.
    pub fn code(&self) -> &'static str {
        match self {
            CoreError::InvalidConfig { .. } => "ERR_INVALID_CONFIG",
            CoreError::InvalidData(_) => "ERR_INVALID_DATA",
            CoreError::Checkpoint { .. } => "ERR_CHECKPOINT",
            CoreError::NonFiniteLoss { .. } => "ERR_NONFINITE_LOSS",
            CoreError::NonFiniteWeights { .. } => "ERR_NONFINITE_WEIGHTS",
            CoreError::OutOfMemory(_) => "ERR_OUT_OF_MEMORY",
            CoreError::Locked { .. } => "ERR_LOCKED",
            CoreError::Device(_) => "ERR_DEVICE",
            CoreError::Distributed(_) => "ERR_DISTRIBUTED",
            CoreError::Io { .. } => "ERR_IO",
            CoreError::Torch(e) if is_allocation_failure(&e.to_string()) => "ERR_OUT_OF_MEMORY",
            CoreError::Torch(_) => "ERR_TORCH",
        }
    }
}

/// libtorch's messages for a failed allocation: CUDA's caching allocator
/// ("CUDA out of memory"), the CPU allocator ("DefaultCPUAllocator: can't
/// allocate memory ... (Cannot allocate memory)", older "not enough memory").
pub fn is_allocation_failure(message: &str) -> bool {
    [
        "out of memory",
        "not enough memory",
        "can't allocate memory",
        "Cannot allocate memory",
    ]
    .iter()
    .any(|m| message.contains(m))
}

pub type Result<T> = std::result::Result<T, CoreError>;
