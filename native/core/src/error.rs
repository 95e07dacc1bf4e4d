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

    #[error("device: {0}")]
    Device(String),

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
            CoreError::Device(_) => "ERR_DEVICE",
            CoreError::Io { .. } => "ERR_IO",
            CoreError::Torch(e) if e.to_string().contains("out of memory") => "ERR_OUT_OF_MEMORY",
            CoreError::Torch(_) => "ERR_TORCH",
        }
    }
}

pub type Result<T> = std::result::Result<T, CoreError>;
