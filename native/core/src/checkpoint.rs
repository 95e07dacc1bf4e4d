//! Checkpoints as safetensors with PyTorch reference tensor names, so they
//! load into the reference models and back. Writes are atomic (temp file in
//! the same folder + rename); loads check every name and shape against the
//! model and say what does not fit.

use crate::error::{CoreError, Result};
use std::collections::HashMap;
use std::path::Path;
use tch::{nn::VarStore, Device, Tensor};

fn err(path: &Path, message: impl Into<String>) -> CoreError {
    CoreError::Checkpoint {
        path: path.display().to_string(),
        message: message.into(),
    }
}

pub fn save(vs: &VarStore, path: &Path) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| CoreError::Io {
            path: dir.display().to_string(),
            source,
        })?;
    }
    let mut named: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .map(|(name, t)| (name, t.detach().to_device(Device::Cpu).contiguous()))
        .collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    let file_name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("checkpoint");
    let tmp = path.with_file_name(format!(".{file_name}.tmp-{}", std::process::id()));
    Tensor::write_safetensors(&named, &tmp).map_err(|e| err(path, e.to_string()))?;
    std::fs::rename(&tmp, path).map_err(|source| CoreError::Io {
        path: path.display().to_string(),
        source,
    })?;
    Ok(())
}

/// Loads `path` into `vs`, which must hold exactly the same tensor names and
/// shapes (a checkpoint of another architecture is refused, naming the
/// differences).
pub fn load(vs: &mut VarStore, path: &Path, model: &str) -> Result<()> {
    if !path.exists() {
        return Err(err(path, "file not found"));
    }
    let stored: HashMap<String, Tensor> = Tensor::read_safetensors(path)
        .map_err(|e| err(path, format!("not a readable safetensors file: {e}")))?
        .into_iter()
        .collect();
    let wanted = vs.variables();
    let mut problems = Vec::new();
    for (name, t) in &wanted {
        match stored.get(name) {
            None => problems.push(format!("missing tensor {name}")),
            Some(s) if s.size() != t.size() => problems.push(format!(
                "tensor {name} has shape {:?}, model expects {:?}",
                s.size(),
                t.size()
            )),
            Some(_) => {}
        }
    }
    let mut extra: Vec<_> = stored
        .keys()
        .filter(|k| !wanted.contains_key(*k))
        .cloned()
        .collect();
    extra.sort();
    problems.extend(extra.into_iter().map(|k| format!("unexpected tensor {k}")));
    if !problems.is_empty() {
        let n = problems.len();
        problems.truncate(5);
        return Err(err(
            path,
            format!(
                "does not fit model {model} ({n} problems): {}",
                problems.join("; ")
            ),
        ));
    }
    tch::no_grad(|| {
        for (name, mut t) in wanted {
            let src = &stored[&name];
            t.f_copy_(&src.to_kind(t.kind()).to_device(t.device()))
                .map_err(|e| err(path, format!("{name}: {e}")))?;
        }
        Ok(())
    })
}
