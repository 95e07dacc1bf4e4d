//! Checkpoints as safetensors with PyTorch reference tensor names, so they
//! load into the reference models and back (`safetensors.torch.load_file`).
//!
//! What each file carries beyond the tensors, in the safetensors metadata:
//! - `st_native.crc32`: a CRC-32 of every tensor's name and bytes (in name
//!   order, so it does not depend on the file layout). Verified on load: a
//!   flipped bit is an error, never a silently worse model. Files without it
//!   (written by PyTorch) still load, and say so (`CheckpointInfo::verified`).
//! - `st_native.metadata_crc32`: a CRC-32 of everything else the header
//!   says: each tensor's name, dtype and shape, the tensor checksum above and
//!   every other metadata entry (in key order). A file's meaning lives in its
//!   metadata too (an AutoAttack state's stage, a training state's epoch), so
//!   an edited header is as much corruption as a flipped weight. Verified on
//!   load when present; files written before it existed lack it, and
//!   `read_named_sealed` refuses those.
//! - what evaluation needs to reproduce the run's numbers without any other
//!   file: model, class count, seed and the epoch the weights were evaluated
//!   after.
//!
//! Writes are atomic and clean: a temp file in the same folder, fsync, rename.
//! A failed write removes its temp file; a process that exits mid-write
//! removes it too (`close_temp_files`, called by the binding's exit path). Reads accept regular files of bounded size only (no FIFOs, no
//! /dev/zero), check the header before trusting it, and refuse non-finite
//! values.

use crate::error::{CoreError, Result};
use safetensors::tensor::{Dtype, SafeTensors, View};
use serde::Serialize;
use std::borrow::Cow;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use tch::{nn::VarStore, Device, Kind, Tensor};

/// Larger than any model we build (WRN-34-10 in float32 is 185 MB) by far,
/// small enough that a wrong path (a disk image, /dev/zero) is refused at once.
pub const MAX_CHECKPOINT_BYTES: u64 = 4 << 30;

const KEY_CRC: &str = "st_native.crc32";
const KEY_META_CRC: &str = "st_native.metadata_crc32";
const KEY_MODEL: &str = "st_native.model";
const KEY_CLASSES: &str = "st_native.num_classes";
const KEY_EPOCH: &str = "st_native.epoch";
const KEY_SEED: &str = "st_native.seed";
const KEY_KIND: &str = "st_native.kind";

fn err(path: &Path, message: impl Into<String>) -> CoreError {
    CoreError::Checkpoint {
        path: path.display().to_string(),
        message: message.into(),
    }
}

fn io_err(path: &Path, source: std::io::Error) -> CoreError {
    CoreError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// What a run records with each checkpoint.
#[derive(Debug, Clone)]
pub struct SaveMeta<'a> {
    pub model: &'a str,
    pub num_classes: i64,
    /// The epoch whose end these weights are (0 before the first epoch ends).
    pub epoch: usize,
    pub seed: i64,
    /// "last", "best" or "interrupted".
    pub kind: &'a str,
}

/// What a checkpoint file says about itself (its safetensors metadata).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct CheckpointInfo {
    /// True when the file carried st-native's checksum and it matched (false:
    /// a file from elsewhere, unverified).
    pub verified: bool,
    pub model: Option<String>,
    pub num_classes: Option<i64>,
    /// The epoch whose end the weights are (evaluation seeds from it).
    pub epoch: Option<usize>,
    pub seed: Option<i64>,
    pub kind: Option<String>,
    pub tensors: usize,
}

// ---------------------------------------------------------------- temp files

/// Temp files being written right now, so an exiting process can remove
/// them, and whether the process is closing (then no new one is created).
struct TempFiles {
    closing: bool,
    paths: Vec<PathBuf>,
}

static TEMP_FILES: Mutex<TempFiles> = Mutex::new(TempFiles {
    closing: false,
    paths: Vec::new(),
});

fn temp_files() -> std::sync::MutexGuard<'static, TempFiles> {
    TEMP_FILES.lock().unwrap_or_else(|p| p.into_inner())
}

/// Called by the binding's exit path just before `_exit`: removes the temp
/// files of writes in progress and returns the lock held, so that no writer
/// can create or rename a file between this cleanup and the exit (a writer
/// holds the lock only around `create` and `rename`, never while writing).
pub fn close_temp_files() -> std::sync::MutexGuard<'static, impl Sized> {
    let mut files = temp_files();
    files.closing = true;
    for f in files.paths.drain(..) {
        let _ = std::fs::remove_file(f);
    }
    files
}

/// This machine's name for temp file names: a runs folder shared between
/// hosts must only be swept of this host's dead writers' files.
fn host_name() -> String {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let clean: String = raw
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if clean.is_empty() {
        "localhost".into()
    } else {
        clean
    }
}

/// `.name.tmp-<host>-<pid>` beside the target: same folder (so rename is
/// atomic), hidden, and naming its writer so a later run can tell a stale
/// one (`ts/experiment/files.ts` sweeps them).
pub fn temp_path(path: &Path) -> PathBuf {
    let file_name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("checkpoint");
    path.with_file_name(format!(
        ".{file_name}.tmp-{}-{}",
        host_name(),
        std::process::id()
    ))
}

fn closing_error(path: &Path) -> CoreError {
    io_err(
        path,
        std::io::Error::new(std::io::ErrorKind::Interrupted, "the process is exiting"),
    )
}

/// Writes `bytes` to `path` atomically: temp file, fsync, rename. On any
/// failure the temp file is removed and the first error is returned.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temp_path(path);
    let mut file = {
        let mut files = temp_files();
        if files.closing {
            return Err(closing_error(path));
        }
        let f = std::fs::File::create(&tmp).map_err(|e| io_err(path, e))?;
        files.paths.push(tmp.clone());
        f
    };
    let written = file.write_all(bytes).and_then(|_| file.sync_all());
    drop(file);
    let mut files = temp_files();
    files.paths.retain(|p| p != &tmp);
    if files.closing {
        // The exit path removed it already, or will not look again.
        let _ = std::fs::remove_file(&tmp);
        return Err(closing_error(path));
    }
    let renamed = written.and_then(|_| std::fs::rename(&tmp, path));
    if renamed.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    drop(files);
    renamed.map_err(|e| io_err(path, e))?;
    // Make the rename itself durable (best effort: not every filesystem allows it).
    if let Some(dir) = path.parent() {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- dtypes

fn dtype_of(kind: Kind) -> Option<Dtype> {
    Some(match kind {
        Kind::Float => Dtype::F32,
        Kind::Double => Dtype::F64,
        Kind::Half => Dtype::F16,
        Kind::BFloat16 => Dtype::BF16,
        Kind::Int64 => Dtype::I64,
        Kind::Int => Dtype::I32,
        Kind::Uint8 => Dtype::U8,
        Kind::Bool => Dtype::BOOL,
        _ => return None,
    })
}

fn kind_of(dtype: Dtype) -> Option<Kind> {
    Some(match dtype {
        Dtype::F32 => Kind::Float,
        Dtype::F64 => Kind::Double,
        Dtype::F16 => Kind::Half,
        Dtype::BF16 => Kind::BFloat16,
        Dtype::I64 => Kind::Int64,
        Dtype::I32 => Kind::Int,
        Dtype::U8 => Kind::Uint8,
        Dtype::BOOL => Kind::Bool,
        _ => return None,
    })
}

fn is_float(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::Float | Kind::Double | Kind::Half | Kind::BFloat16
    )
}

/// One tensor's bytes on the host, in safetensors' terms.
struct HostTensor {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl View for &HostTensor {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

/// CRC-32 over (name, bytes) of each tensor in name order.
fn checksum<'a>(tensors: impl Iterator<Item = (&'a str, &'a [u8])>) -> String {
    let mut sorted: Vec<_> = tensors.collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let mut h = crc32fast::Hasher::new();
    for (name, bytes) in sorted {
        h.update(&(name.len() as u64).to_le_bytes());
        h.update(name.as_bytes());
        h.update(&(bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    }
    format!("{:08x}", h.finalize())
}

/// CRC-32 over the header's meaning: each tensor's (name, dtype, shape) in
/// name order, then every metadata entry but this checksum itself in key
/// order (the tensor checksum among them, which binds the data in).
fn metadata_checksum<'a>(
    tensors: impl Iterator<Item = (&'a str, Dtype, &'a [usize])>,
    metadata: &HashMap<String, String>,
) -> String {
    let mut h = crc32fast::Hasher::new();
    let mut field = |bytes: &[u8]| {
        h.update(&(bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    let mut sorted: Vec<_> = tensors.collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    for (name, dtype, shape) in sorted {
        field(name.as_bytes());
        field(format!("{dtype:?}").as_bytes());
        let dims: Vec<u8> = shape
            .iter()
            .flat_map(|&d| (d as u64).to_le_bytes())
            .collect();
        field(&dims);
    }
    let mut entries: Vec<_> = metadata
        .iter()
        .filter(|(k, _)| *k != KEY_META_CRC)
        .collect();
    entries.sort();
    for (k, v) in entries {
        field(k.as_bytes());
        field(v.as_bytes());
    }
    format!("{:08x}", h.finalize())
}

// ---------------------------------------------------------------- checks

/// The first variable holding NaN or ±inf, if any (one reduction per tensor,
/// on the device; only a boolean per tensor comes to the host).
pub fn first_nonfinite(vs: &VarStore) -> Option<String> {
    let mut vars: Vec<_> = vs.variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    tch::no_grad(|| {
        let flags: Vec<Tensor> = vars
            .iter()
            .filter(|(_, t)| is_float(t.kind()))
            .map(|(_, t)| t.isfinite().all().logical_not())
            .collect();
        if flags.is_empty() {
            return None;
        }
        let any_bad = Tensor::stack(&flags, 0);
        if any_bad.any().int64_value(&[]) == 0 {
            return None;
        }
        let names: Vec<&String> = vars
            .iter()
            .filter(|(_, t)| is_float(t.kind()))
            .map(|(n, _)| n)
            .collect();
        let bad = Vec::<i64>::try_from(any_bad.to_kind(Kind::Int64).to_device(Device::Cpu)).ok()?;
        bad.iter().position(|&b| b != 0).map(|i| names[i].clone())
    })
}

// ---------------------------------------------------------------- save

/// Saves every variable of `vs` (weights and BatchNorm running statistics)
/// with `meta`. Refuses non-finite weights, so a diverged model can never
/// replace a good checkpoint.
pub fn save(vs: &VarStore, path: &Path, meta: &SaveMeta) -> Result<()> {
    if let Some(name) = first_nonfinite(vs) {
        return Err(CoreError::NonFiniteWeights {
            epoch: meta.epoch,
            tensor: name,
        });
    }
    let metadata = [
        (KEY_MODEL, meta.model.to_string()),
        (KEY_CLASSES, meta.num_classes.to_string()),
        (KEY_EPOCH, meta.epoch.to_string()),
        (KEY_SEED, meta.seed.to_string()),
        (KEY_KIND, meta.kind.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    save_named(vs.variables().into_iter().collect(), path, metadata)
}

/// Writes named tensors with `metadata` (plus our checksum) atomically.
pub fn save_named(
    named: Vec<(String, Tensor)>,
    path: &Path,
    mut metadata: HashMap<String, String>,
) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
    }
    let mut host: Vec<(String, HostTensor)> = Vec::new();
    for (name, t) in named {
        let t = t.detach().to_device(Device::Cpu).contiguous();
        let dtype = dtype_of(t.kind())
            .ok_or_else(|| err(path, format!("{name}: cannot store dtype {:?}", t.kind())))?;
        let numel = t.numel();
        let mut bytes = vec![0u8; numel * t.kind().elt_size_in_bytes()];
        t.f_copy_data_u8(&mut bytes, numel)
            .map_err(|e| err(path, format!("{name}: {e}")))?;
        let shape = t.size().iter().map(|&d| d as usize).collect();
        host.push((
            name,
            HostTensor {
                dtype,
                shape,
                bytes,
            },
        ));
    }
    host.sort_by(|a, b| a.0.cmp(&b.0));
    let crc = checksum(host.iter().map(|(n, t)| (n.as_str(), t.bytes.as_slice())));
    metadata.insert(KEY_CRC.to_string(), crc);
    metadata.remove(KEY_META_CRC);
    let sealed = metadata_checksum(
        host.iter()
            .map(|(n, t)| (n.as_str(), t.dtype, t.shape.as_slice())),
        &metadata,
    );
    metadata.insert(KEY_META_CRC.to_string(), sealed);
    let bytes = safetensors::tensor::serialize(host.iter().map(|(n, t)| (n, t)), &Some(metadata))
        .map_err(|e| err(path, format!("cannot serialise: {e:?}")))?;
    write_atomic(path, &bytes)
}

/// Tensors by name, with a file's metadata.
pub type NamedTensors = (Vec<(String, Tensor)>, HashMap<String, String>);

/// Reads every tensor of a checkpoint (checksum verified; a file without
/// our checksum is refused here: this is for files we wrote) with its
/// metadata. Tensors come back on the CPU in their stored dtype.
pub fn read_named(path: &Path) -> Result<NamedTensors> {
    read_named_checked(path, false)
}

/// `read_named` for files whose metadata is part of their meaning (an
/// AutoAttack state): refuses a file without the metadata checksum, so no
/// header edit can go unseen.
pub fn read_named_sealed(path: &Path) -> Result<NamedTensors> {
    read_named_checked(path, true)
}

fn read_named_checked(path: &Path, sealed: bool) -> Result<NamedTensors> {
    let parsed = parse(path)?;
    if sealed && !parsed.metadata_verified {
        return Err(err(
            path,
            "has no checksum over its metadata: written by an older st-native or edited; delete it to start over",
        ));
    }
    if !parsed.info.verified {
        return Err(err(
            path,
            "has no st-native checksum: not a file st-native wrote",
        ));
    }
    let st = SafeTensors::deserialize(&parsed.bytes)
        .map_err(|e| err(path, describe_safetensors_error(&e)))?;
    let (_, header) = SafeTensors::read_metadata(&parsed.bytes)
        .map_err(|e| err(path, describe_safetensors_error(&e)))?;
    let mut out = Vec::new();
    for (name, view) in st.tensors() {
        let kind = kind_of(view.dtype()).ok_or_else(|| {
            err(
                path,
                format!("{name}: unsupported dtype {:?}", view.dtype()),
            )
        })?;
        let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
        let t = Tensor::f_from_data_size(view.data(), &shape, kind)
            .map_err(|e| err(path, format!("{name}: {e}")))?;
        out.push((name, t));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok((out, header.metadata().clone().unwrap_or_default()))
}

// ---------------------------------------------------------------- load

/// Reads a whole file, accepting only a regular file of at most `max` bytes.
pub fn read_regular_file(path: &Path, max: u64, what: &str) -> Result<Vec<u8>> {
    let meta = std::fs::metadata(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            err(path, "file not found")
        } else {
            io_err(path, e)
        }
    })?;
    if !meta.is_file() {
        return Err(err(
            path,
            format!(
                "not a regular file (a {what} must be a plain file, not a pipe, device or folder)"
            ),
        ));
    }
    if meta.len() > max {
        return Err(err(
            path,
            format!(
                "{} bytes is larger than any {what} ({max} bytes at most)",
                meta.len()
            ),
        ));
    }
    let f = std::fs::File::open(path).map_err(|e| io_err(path, e))?;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // take(): the file may grow between stat and read.
    f.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| io_err(path, e))?;
    if bytes.len() as u64 > max {
        return Err(err(path, format!("larger than {max} bytes")));
    }
    Ok(bytes)
}

fn describe_safetensors_error(e: &safetensors::SafeTensorError) -> String {
    use safetensors::SafeTensorError as E;
    match e {
        E::HeaderTooSmall => {
            "not a safetensors file (shorter than its 8-byte header length)".into()
        }
        E::InvalidHeaderLength => "truncated: shorter than its header says".into(),
        E::MetadataIncompleteBuffer => {
            "truncated or padded: the tensor data does not match the header's sizes".into()
        }
        E::InvalidHeader | E::InvalidHeaderStart | E::InvalidHeaderDeserialization => {
            "not a safetensors file (its header is not the expected JSON)".into()
        }
        E::HeaderTooLarge => "not a safetensors file (header length out of range)".into(),
        other => format!("invalid safetensors layout ({other:?})"),
    }
}

fn parse_info(metadata: &Option<HashMap<String, String>>, tensors: usize) -> CheckpointInfo {
    let get = |k: &str| metadata.as_ref().and_then(|m| m.get(k)).cloned();
    CheckpointInfo {
        verified: false,
        model: get(KEY_MODEL),
        num_classes: get(KEY_CLASSES).and_then(|v| v.parse().ok()),
        epoch: get(KEY_EPOCH).and_then(|v| v.parse().ok()),
        seed: get(KEY_SEED).and_then(|v| v.parse().ok()),
        kind: get(KEY_KIND),
        tensors,
    }
}

/// A parsed, checksum-verified checkpoint held in memory.
struct Parsed {
    bytes: Vec<u8>,
    info: CheckpointInfo,
    /// The metadata checksum was present and matched.
    metadata_verified: bool,
}

fn parse(path: &Path) -> Result<Parsed> {
    let bytes = read_regular_file(path, MAX_CHECKPOINT_BYTES, "checkpoint")?;
    let st =
        SafeTensors::deserialize(&bytes).map_err(|e| err(path, describe_safetensors_error(&e)))?;
    let (_, header) = SafeTensors::read_metadata(&bytes)
        .map_err(|e| err(path, describe_safetensors_error(&e)))?;
    let tensors = st.tensors();
    let mut info = parse_info(header.metadata(), tensors.len());
    if let Some(stored) = header.metadata().as_ref().and_then(|m| m.get(KEY_CRC)) {
        let actual = checksum(tensors.iter().map(|(n, v)| (n.as_str(), v.data())));
        if &actual != stored {
            return Err(err(
                path,
                format!("corrupt: the tensor data's checksum is {actual}, the file says {stored} (the file was damaged after it was written)"),
            ));
        }
        info.verified = true;
    }
    let mut metadata_verified = false;
    if let Some(metadata) = header.metadata() {
        if let Some(stored) = metadata.get(KEY_META_CRC) {
            let actual = metadata_checksum(
                tensors
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.dtype(), v.shape())),
                metadata,
            );
            if &actual != stored {
                return Err(err(
                    path,
                    format!("corrupt: the header's checksum is {actual}, the file says {stored} (its metadata, names, dtypes or shapes were changed after it was written)"),
                ));
            }
            metadata_verified = true;
        }
    }
    drop(tensors);
    drop(st);
    Ok(Parsed {
        bytes,
        info,
        metadata_verified,
    })
}

/// What a checkpoint says about itself, after verifying its checksum.
pub fn inspect(path: &Path) -> Result<CheckpointInfo> {
    parse(path).map(|p| p.info)
}

/// `3 missing tensors: a, b, c` (the first few names, then how many more).
fn name_list(what: &str, names: &[String]) -> String {
    const SHOWN: usize = 4;
    let more = names.len().saturating_sub(SHOWN);
    format!(
        "{} {what}{}: {}{}",
        names.len(),
        if names.len() == 1 { "" } else { "s" },
        names[..names.len().min(SHOWN)].join(", "),
        if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        }
    )
}

/// A state dict saved from `DataParallel` / `DistributedDataParallel` names
/// every tensor `module.<name>`: when every stored name has that prefix and
/// none of the model's names is there as it is, the prefix is dropped.
fn strip_data_parallel_prefix<V>(
    stored: HashMap<String, V>,
    wanted: &HashMap<String, Tensor>,
) -> HashMap<String, V> {
    const PREFIX: &str = "module.";
    let prefixed = !stored.is_empty() && stored.keys().all(|k| k.starts_with(PREFIX));
    if !prefixed || wanted.keys().any(|k| stored.contains_key(k)) {
        return stored;
    }
    stored
        .into_iter()
        .map(|(k, v)| (k[PREFIX.len()..].to_string(), v))
        .collect()
}

/// Whether `path` loads into `model` (`num_classes`, `shape` inputs): a CPU
/// model is built, loaded and dropped. Errors name the tensors that differ.
pub fn check_fits(
    path: &Path,
    model: &str,
    num_classes: i64,
    shape: [i64; 3],
) -> Result<CheckpointInfo> {
    let mut m = crate::models::build_model(model, num_classes, shape, Device::Cpu)?;
    load(&mut m.vs, path, model)
}

/// Loads `path` into `vs`, which must hold exactly the same tensor names and
/// shapes (a checkpoint of another architecture is refused, naming the
/// differences), with finite values of a floating dtype. Tensors under the
/// registered model's ignored prefixes (unused parts of the reference code's
/// model) may be present too, and are not loaded.
pub fn load(vs: &mut VarStore, path: &Path, model: &str) -> Result<CheckpointInfo> {
    let parsed = parse(path)?;
    let st = SafeTensors::deserialize(&parsed.bytes)
        .map_err(|e| err(path, describe_safetensors_error(&e)))?;
    let wanted = vs.variables();
    let stored = strip_data_parallel_prefix(st.tensors().into_iter().collect(), &wanted);
    let mut problems = Vec::new();
    let mut missing = Vec::new();
    for (name, t) in &wanted {
        match stored.get(name) {
            None => missing.push(name.clone()),
            Some(s) => {
                let shape: Vec<i64> = s.shape().iter().map(|&d| d as i64).collect();
                if shape != t.size() {
                    problems.push(format!(
                        "tensor {name} has shape {shape:?}, model expects {:?}",
                        t.size()
                    ));
                } else if !kind_of(s.dtype()).is_some_and(|k| {
                    // Integer buffers (BatchNorm's num_batches_tracked, int64
                    // in PyTorch too) take an integer dtype.
                    is_float(k) == is_float(t.kind()) && k != Kind::Bool
                }) {
                    problems.push(format!(
                        "tensor {name} has dtype {:?}, expected {}",
                        s.dtype(),
                        if is_float(t.kind()) {
                            "a floating-point dtype"
                        } else {
                            "an integer dtype"
                        }
                    ));
                }
            }
        }
    }
    // Tensors the model's reference code carries but never uses (the WRN
    // code's `sub_block1.*`) are skipped; any other extra tensor is refused.
    let ignored = crate::models::ignored_prefixes(model);
    let mut extra: Vec<_> = stored
        .keys()
        .filter(|k| !wanted.contains_key(*k) && !ignored.iter().any(|p| k.starts_with(p)))
        .cloned()
        .collect();
    extra.sort();
    missing.sort();
    let n = problems.len() + missing.len() + extra.len();
    problems.truncate(5);
    // Missing and unexpected names side by side: together they show a
    // renaming (another prefix, another architecture) at a glance.
    if !missing.is_empty() {
        problems.push(name_list("missing tensor", &missing));
    }
    if !extra.is_empty() {
        problems.push(name_list("unexpected tensor", &extra));
    }
    if let (Some(m), true) = (&parsed.info.model, problems.is_empty()) {
        if m != model {
            problems.push(format!("written for model {m}"));
        }
    }
    if !problems.is_empty() {
        let n = n.max(1);
        return Err(err(
            path,
            format!(
                "does not fit model {model} ({n} problem{}): {}",
                if n == 1 { "" } else { "s" },
                problems.join("; ")
            ),
        ));
    }
    let mut names: Vec<_> = wanted.keys().cloned().collect();
    names.sort();
    tch::no_grad(|| {
        for name in names {
            let view = &stored[&name];
            let kind = kind_of(view.dtype()).expect("checked above");
            let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
            let src = Tensor::f_from_data_size(view.data(), &shape, kind)
                .map_err(|e| err(path, format!("{name}: {e}")))?;
            let finite = src.isfinite().all().int64_value(&[]) != 0;
            if !finite {
                return Err(err(
                    path,
                    format!("tensor {name} holds NaN or infinite values"),
                ));
            }
            let mut dst = wanted[&name].shallow_clone();
            dst.f_copy_(&src.to_kind(dst.kind()).to_device(dst.device()))
                .map_err(|e| err(path, format!("{name}: {e}")))?;
        }
        Ok(())
    })?;
    Ok(parsed.info)
}
