//! Tiny networks and data for fast CPU tests.
#![allow(dead_code)]

pub mod mlp;

use st_core::models::resnet::ResNet;
use st_core::models::small_cnn::SmallCnn;
use std::sync::{Mutex, MutexGuard};
use tch::{nn::VarStore, Device, Kind, Tensor};

static RNG: Mutex<()> = Mutex::new(());

/// Locks libtorch's RNG for one test and seeds it. The RNG is process-global
/// and cargo runs a file's tests on parallel threads, so a test that reseeds
/// to replay the same random draws (PGD starts, ST's two noisy starts) must
/// keep every other test's draws out until it is done: hold the guard for the
/// whole test. A test that panicked while holding it does not poison the rest.
pub fn seeded(seed: i64) -> MutexGuard<'static, ()> {
    let guard = RNG.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    tch::manual_seed(seed);
    guard
}

/// A ResNet-18-shaped net (BatchNorm everywhere) of width 4 on 3×8×8 inputs.
pub fn tiny_resnet(kind: Kind) -> (VarStore, ResNet) {
    let mut vs = VarStore::new(Device::Cpu);
    let net = ResNet::resnet18(&vs.root(), 3, 5, 4);
    if kind == Kind::Double {
        vs.double();
    }
    (vs, net)
}

/// SmallCNN without dropout (so passes are deterministic) and with a
/// non-zero last layer (so it does not predict uniformly at init).
pub fn small_cnn_no_dropout() -> (VarStore, SmallCnn) {
    let vs = VarStore::new(Device::Cpu);
    let net = SmallCnn::new(&vs.root(), 1, 10, 0.0);
    tch::no_grad(|| {
        for (name, mut t) in vs.variables() {
            if name.starts_with("classifier.fc3") {
                t.copy_(&(t.randn_like() * 0.1));
            }
        }
    });
    (vs, net)
}

pub fn images(n: i64, shape: [i64; 3], kind: Kind) -> Tensor {
    Tensor::rand([n, shape[0], shape[1], shape[2]], (kind, Device::Cpu))
}

pub fn labels(n: i64, classes: i64) -> Tensor {
    Tensor::randint(classes, [n], (Kind::Int64, Device::Cpu))
}

/// max |a - b| / max(|b|, tiny)
pub fn rel_err(a: &Tensor, b: &Tensor) -> f64 {
    let diff = (a - b).abs().max().double_value(&[]);
    let scale = b.abs().max().double_value(&[]).max(1e-12);
    diff / scale
}

/// A SmallCNN checkpoint of ours and 1×28×28 digits-like data.
pub fn small_cnn_checkpoint(dir: &std::path::Path) -> (std::path::PathBuf, Vec<u8>, Vec<u8>) {
    let m = st_core::models::build_model("small_cnn", 10, [1, 28, 28], Device::Cpu).unwrap();
    tch::no_grad(|| {
        for (name, mut t) in m.vs.variables() {
            if name.starts_with("classifier.fc3") {
                t.copy_(&(t.randn_like() * 0.1));
            }
        }
    });
    let path = dir.join("model.safetensors");
    st_core::checkpoint::save(
        &m.vs,
        &path,
        &st_core::checkpoint::SaveMeta {
            model: "small_cnn",
            num_classes: 10,
            epoch: 3,
            seed: 11,
            kind: "last",
        },
    )
    .unwrap();
    let n = 60usize;
    let images: Vec<u8> = (0..n * 784).map(|i| ((i * 7919) % 251) as u8).collect();
    let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
    (path, images, labels)
}
