//! Extra (pseudo-labelled) training images read from a `.stextra` file by
//! path, image by image, so a set of any size (RST's 500K images are 1.5 GB,
//! later papers' 20M are 60 GB) costs the labels in memory and one batch's
//! reads per step; the OS page cache does the rest.
//!
//! The format (README "Extra data for RST", `ts/data/extra.ts` writes it):
//! `STEXTRA1`, a u32 little-endian header length H, H bytes of JSON
//! `{count, channels, height, width, layout: "NCHW"|"NHWC", numClasses, ...}`,
//! the pixels (uint8, `layout`), then `count` uint8 labels. The size must be
//! exact and every label below `numClasses`; anything else is refused with
//! the file's path and what was expected.

use crate::error::{CoreError, Result};
use serde::Deserialize;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

pub const MAGIC: &[u8; 8] = b"STEXTRA1";
/// Headers are a few hundred bytes; a larger length is a corrupt file.
const MAX_HEADER: u32 = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Layout {
    #[serde(rename = "NCHW")]
    Nchw,
    #[serde(rename = "NHWC")]
    Nhwc,
}

/// The JSON header (unknown fields, e.g. `source`, are allowed: the TS writer
/// adds provenance).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Header {
    pub count: u64,
    pub channels: u64,
    pub height: u64,
    pub width: u64,
    pub layout: Layout,
    pub num_classes: u64,
    #[serde(default)]
    pub sha256: Option<String>,
}

/// An opened, checked extra-data file.
pub struct ExtraFile {
    path: PathBuf,
    file: File,
    pub header: Header,
    data_offset: u64,
    /// All labels (one byte each), checked against `numClasses`.
    labels: Vec<u8>,
}

fn bad(path: &Path, message: impl std::fmt::Display) -> CoreError {
    CoreError::InvalidData(format!("extra data {}: {message}", path.display()))
}

fn io(path: &Path, source: std::io::Error) -> CoreError {
    CoreError::Io {
        path: path.display().to_string(),
        source,
    }
}

impl ExtraFile {
    /// Opens `path` and checks its magic, header, exact size and labels.
    pub fn open(path: &Path) -> Result<Self> {
        let mut file = File::open(path).map_err(|e| io(path, e))?;
        let size = file.metadata().map_err(|e| io(path, e))?.len();
        let mut head = [0u8; 12];
        if size < 12 || file.read_exact(&mut head).is_err() || &head[..8] != MAGIC {
            return Err(bad(
                path,
                "not an extra-data file: expected it to start with \"STEXTRA1\"",
            ));
        }
        let hlen = u32::from_le_bytes(head[8..12].try_into().expect("4 bytes"));
        if hlen > MAX_HEADER || 12 + hlen as u64 > size {
            return Err(bad(
                path,
                format!("truncated or corrupt: a header of {hlen} bytes in a file of {size}"),
            ));
        }
        let mut json = vec![0u8; hlen as usize];
        file.read_exact(&mut json).map_err(|e| io(path, e))?;
        let header: Header = serde_json::from_slice(&json)
            .map_err(|e| bad(path, format!("the header is not the expected JSON ({e})")))?;
        for (name, v) in [
            ("count", header.count),
            ("channels", header.channels),
            ("height", header.height),
            ("width", header.width),
            ("numClasses", header.num_classes),
        ] {
            if v == 0 {
                return Err(bad(
                    path,
                    format!("header field \"{name}\" must be a positive integer"),
                ));
            }
        }
        if header.num_classes > 256 {
            return Err(bad(
                path,
                format!(
                    "header field \"numClasses\" is {}, expected at most 256 (labels are uint8)",
                    header.num_classes
                ),
            ));
        }
        let data_offset = 12 + hlen as u64;
        let per = header.channels * header.height * header.width;
        let expected = header
            .count
            .checked_mul(per + 1)
            .and_then(|b| b.checked_add(data_offset));
        if expected != Some(size) {
            let what = match expected {
                Some(e) if size < e => format!("truncated: {size} bytes, expected {e}"),
                Some(e) => format!("too long: {size} bytes, expected {e}"),
                None => "a header whose sizes overflow".to_string(),
            };
            return Err(bad(
                path,
                format!(
                    "{what} ({} images of {}×{}×{} and {} labels)",
                    header.count, header.channels, header.height, header.width, header.count
                ),
            ));
        }
        let mut labels = vec![0u8; header.count as usize];
        file.seek(SeekFrom::Start(data_offset + header.count * per))
            .and_then(|_| file.read_exact(&mut labels))
            .map_err(|e| io(path, e))?;
        if let Some((i, &l)) = labels
            .iter()
            .enumerate()
            .find(|(_, &l)| l as u64 >= header.num_classes)
        {
            return Err(bad(
                path,
                format!(
                    "label {i} is {l}, expected below numClasses {}",
                    header.num_classes
                ),
            ));
        }
        Ok(ExtraFile {
            path: path.to_path_buf(),
            file,
            header,
            data_offset,
            labels,
        })
    }

    pub fn len(&self) -> i64 {
        self.header.count as i64
    }

    pub fn is_empty(&self) -> bool {
        self.header.count == 0
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Checks the file fits a run on images of `shape` with `num_classes`.
    pub fn check_fits(&self, shape: [i64; 3], num_classes: i64) -> Result<()> {
        let h = &self.header;
        let own = [h.channels as i64, h.height as i64, h.width as i64];
        if own != shape {
            return Err(bad(
                &self.path,
                format!(
                    "images of {}×{}×{}, the dataset's are {}×{}×{}",
                    own[0], own[1], own[2], shape[0], shape[1], shape[2]
                ),
            ));
        }
        if let Some(max) = self.labels.iter().max() {
            if *max as i64 >= num_classes {
                return Err(bad(
                    &self.path,
                    format!("holds label {max}; the dataset has {num_classes} classes"),
                ));
            }
        }
        Ok(())
    }

    /// What a resume file records of the extra data, to refuse resuming a
    /// run with other extra data than it started with.
    pub fn fingerprint(&self, fraction: f64) -> String {
        let h = &self.header;
        format!(
            "{} images {}×{}×{}, fraction {fraction}, sha256 {}",
            h.count,
            h.channels,
            h.height,
            h.width,
            h.sha256.as_deref().unwrap_or("none")
        )
    }

    /// Images `index` (each in 0..len) as a k×C×H×W uint8 tensor and their
    /// labels as k int64, on `device`.
    pub fn gather(&self, index: &[i64], device: Device) -> Result<(Tensor, Tensor)> {
        let h = &self.header;
        let (c, hh, w) = (h.channels as usize, h.height as usize, h.width as usize);
        let per = c * hh * w;
        let k = index.len();
        let mut raw = vec![0u8; k * per];
        let mut labels = Vec::with_capacity(k);
        for (j, &i) in index.iter().enumerate() {
            if i < 0 || i >= self.len() {
                return Err(bad(
                    &self.path,
                    format!("image {i} asked, the file has {}", self.len()),
                ));
            }
            let at = self.data_offset + i as u64 * per as u64;
            // `&File` reads and seeks: no `&mut self`, and one file handle.
            let mut file = &self.file;
            file.seek(SeekFrom::Start(at))
                .and_then(|_| file.read_exact(&mut raw[j * per..(j + 1) * per]))
                .map_err(|e| io(&self.path, e))?;
            labels.push(self.labels[i as usize] as i64);
        }
        let shape = [k as i64, c as i64, hh as i64, w as i64];
        let images = match h.layout {
            Layout::Nchw => Tensor::from_slice(&raw).view(shape),
            Layout::Nhwc => Tensor::from_slice(&raw)
                .view([k as i64, hh as i64, w as i64, c as i64])
                .permute([0, 3, 1, 2])
                .contiguous(),
        };
        let labels = Tensor::from_slice(&labels).to_kind(Kind::Int64);
        Ok((images.to_device(device), labels.to_device(device)))
    }
}
