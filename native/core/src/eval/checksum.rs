//! The checksum `checkpoint::save` records, for any safetensors file.

use crate::error::{CoreError, Result};
use std::path::Path;

/// The checksum `checkpoint::save` records, computed for any safetensors file.
pub fn content_crc(path: &Path) -> Result<String> {
    let bytes = crate::checkpoint::read_regular_file(
        path,
        crate::checkpoint::MAX_CHECKPOINT_BYTES,
        "checkpoint",
    )?;
    let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| CoreError::Checkpoint {
        path: path.display().to_string(),
        message: format!("not a safetensors file ({e:?})"),
    })?;
    let mut tensors = st.tensors();
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    let mut h = crc32fast::Hasher::new();
    for (name, view) in &tensors {
        let data = view.data();
        h.update(&(name.len() as u64).to_le_bytes());
        h.update(name.as_bytes());
        h.update(&(data.len() as u64).to_le_bytes());
        h.update(data);
    }
    Ok(format!("{:08x}", h.finalize()))
}
