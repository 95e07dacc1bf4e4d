//! Device-resident datasets: uint8 images copied to the device once, batches
//! gathered and augmented there (random crop + flip as tensor ops), so the
//! hot loop never touches the host.

use crate::config::AugmentConfig;
use crate::error::{CoreError, Result};
use tch::{Device, Kind, Tensor};

pub struct Split {
    /// N×C×H×W uint8 on the device.
    pub images: Tensor,
    /// N int64 class indices on the device.
    pub labels: Tensor,
}

impl Split {
    /// Validates the raw buffers against their declared shape and class count
    /// (`what` names the split in errors) and uploads them.
    pub fn from_bytes(
        what: &str,
        images: &[u8],
        labels: &[u8],
        shape: [i64; 3],
        num_classes: i64,
        device: Device,
    ) -> Result<Self> {
        let per_image: i64 = shape.iter().product();
        if per_image <= 0 {
            return Err(CoreError::InvalidData(format!(
                "{what}: image shape {shape:?} must be positive"
            )));
        }
        let n = labels.len() as i64;
        if n == 0 {
            return Err(CoreError::InvalidData(format!("{what}: no samples")));
        }
        if images.len() as i64 != n * per_image {
            return Err(CoreError::InvalidData(format!(
                "{what}: {} image bytes for {n} labels, expected {n} × {:?} = {}",
                images.len(),
                shape,
                n * per_image
            )));
        }
        if let Some((i, &l)) = labels
            .iter()
            .enumerate()
            .find(|(_, &l)| l as i64 >= num_classes)
        {
            return Err(CoreError::InvalidData(format!(
                "{what}: label {l} at index {i} is outside 0..{num_classes}"
            )));
        }
        let images = Tensor::from_slice(images)
            .view([n, shape[0], shape[1], shape[2]])
            .to_device(device);
        let labels = Tensor::from_slice(labels)
            .to_kind(Kind::Int64)
            .to_device(device);
        Ok(Split { images, labels })
    }

    pub fn len(&self) -> i64 {
        self.labels.size()[0]
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The first `n` samples (a view).
    pub fn prefix(&self, n: i64) -> Split {
        let n = n.min(self.len());
        Split {
            images: self.images.narrow(0, 0, n),
            labels: self.labels.narrow(0, 0, n),
        }
    }

    /// Batch `index` (int64 indices on the device) as floats in [0,1].
    pub fn batch(&self, index: &Tensor) -> (Tensor, Tensor) {
        let x = self.images.index_select(0, index).to_kind(Kind::Float) / 255.0;
        (x, self.labels.index_select(0, index))
    }

    /// Consecutive batch [start, start + len) as floats in [0,1].
    pub fn slice(&self, start: i64, len: i64) -> (Tensor, Tensor) {
        let x = self.images.narrow(0, start, len).to_kind(Kind::Float) / 255.0;
        (x, self.labels.narrow(0, start, len))
    }
}

/// Random crop with zero padding back to the input size, and random
/// horizontal flip, per sample, on the device.
pub fn augment(x: &Tensor, cfg: &AugmentConfig) -> Tensor {
    let mut x = x.shallow_clone();
    let (b, c, h, w) = x.size4().expect("images are N×C×H×W");
    let pad = cfg.random_crop_padding;
    let dev = x.device();
    if pad > 0 {
        let padded = x.constant_pad_nd([pad, pad, pad, pad]);
        let off_y = Tensor::randint(2 * pad + 1, [b, 1], (Kind::Int64, dev));
        let off_x = Tensor::randint(2 * pad + 1, [b, 1], (Kind::Int64, dev));
        let rows = (off_y + Tensor::arange(h, (Kind::Int64, dev)).view([1, h])).view([b, 1, h, 1]);
        let cols = (off_x + Tensor::arange(w, (Kind::Int64, dev)).view([1, w])).view([b, 1, 1, w]);
        let by_rows = padded.gather(2, &rows.expand([b, c, h, w + 2 * pad], false), false);
        x = by_rows.gather(3, &cols.expand([b, c, h, w], false), false);
    }
    if cfg.horizontal_flip {
        let flip = Tensor::rand([b, 1, 1, 1], (Kind::Float, dev)).lt(0.5);
        x = x.flip([3]).where_self(&flip, &x);
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i % 251) as u8).collect()
    }

    #[test]
    fn rejects_wrong_lengths_and_labels() {
        let e = Split::from_bytes("train", &bytes(10), &[0, 1], [1, 2, 2], 10, Device::Cpu)
            .err()
            .unwrap();
        assert!(
            e.to_string().contains("train: 10 image bytes for 2 labels"),
            "{e}"
        );
        let e = Split::from_bytes("test", &bytes(8), &[0, 12], [1, 2, 2], 10, Device::Cpu)
            .err()
            .unwrap();
        assert!(e.to_string().contains("label 12 at index 1"), "{e}");
    }

    #[test]
    fn batches_are_scaled_to_unit_range() {
        let s =
            Split::from_bytes("t", &[0, 255, 51, 102], &[3], [1, 2, 2], 10, Device::Cpu).unwrap();
        let (x, y) = s.slice(0, 1);
        assert_eq!(
            Vec::<f32>::try_from(x.flatten(0, -1)).unwrap(),
            vec![0.0, 1.0, 0.2, 0.4]
        );
        assert_eq!(y.int64_value(&[0]), 3);
    }

    #[test]
    fn crop_is_a_shifted_window_of_the_padded_image_and_flip_mirrors() {
        tch::manual_seed(3);
        let x = Tensor::arange(2 * 3 * 5 * 5, (Kind::Float, Device::Cpu)).view([2, 3, 5, 5]) + 1.0;
        let cfg = AugmentConfig {
            random_crop_padding: 2,
            horizontal_flip: true,
        };
        let out = augment(&x, &cfg);
        assert_eq!(out.size(), vec![2, 3, 5, 5]);
        let padded = x.constant_pad_nd([2, 2, 2, 2]);
        for i in 0..2 {
            let found = (0..5).any(|oy| {
                (0..5).any(|ox| {
                    let win = padded.get(i).narrow(1, oy, 5).narrow(2, ox, 5);
                    win.equal(&out.get(i)) || win.flip([2]).equal(&out.get(i))
                })
            });
            assert!(
                found,
                "sample {i} is not a (flipped) window of its padded image"
            );
        }
    }
}
