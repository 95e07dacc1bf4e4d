//! A two-layer perceptron on synthetic 1×8×8 images of 4 classes: fast
//! enough to run whole attacks (AutoAttack included) in unit tests.

use st_core::data::Split;
use st_core::models::{Classifier, Mode};
use tch::nn::{self, Module, OptimizerConfig};
use tch::{Device, Kind, Tensor};

/// A two-layer perceptron on 1×8×8 images.
pub struct Mlp {
    pub l1: nn::Linear,
    pub l2: nn::Linear,
}

impl Classifier for Mlp {
    fn forward(&self, xs: &Tensor, _mode: &Mode) -> Tensor {
        self.l2.forward(&self.l1.forward(&xs.flatten(1, -1)).relu())
    }
}

pub const SHAPE: [i64; 3] = [1, 8, 8];
pub const CLASSES: i64 = 4;

/// Noisy copies of one fixed random pattern per class, as uint8 bytes.
pub fn synthetic(n: i64, seed: i64) -> (Vec<u8>, Vec<u8>) {
    tch::manual_seed(1234);
    let patterns = Tensor::rand([CLASSES, 64], (Kind::Float, Device::Cpu)) * 0.6 + 0.2;
    tch::manual_seed(seed);
    let y = Tensor::randint(CLASSES, [n], (Kind::Int64, Device::Cpu));
    let x = (patterns.index_select(0, &y)
        + Tensor::randn([n, 64], (Kind::Float, Device::Cpu)) * 0.12)
        .clamp(0.0, 1.0);
    let bytes = (x * 255.0).round().to_kind(Kind::Uint8);
    let mut images = vec![0u8; (n * 64) as usize];
    bytes.copy_data(&mut images, (n * 64) as usize);
    let labels: Vec<u8> = Vec::<i64>::try_from(&y)
        .unwrap()
        .into_iter()
        .map(|l| l as u8)
        .collect();
    (images, labels)
}

pub fn split(n: i64, seed: i64) -> Split {
    let (images, labels) = synthetic(n, seed);
    Split::from_bytes("test", &images, &labels, SHAPE, CLASSES, Device::Cpu).unwrap()
}

/// A naturally trained perceptron (clean accuracy near 100%).
pub fn trained_mlp() -> (nn::VarStore, Mlp) {
    let vs = nn::VarStore::new(Device::Cpu);
    let p = vs.root();
    tch::manual_seed(7);
    let net = Mlp {
        l1: nn::linear(&p / "l1", 64, 32, Default::default()),
        l2: nn::linear(&p / "l2", 32, CLASSES, Default::default()),
    };
    let train = split(512, 99);
    let (x, y) = train.slice(0, 512);
    let mut opt = nn::Adam::default().build(&vs, 1e-2).unwrap();
    for _ in 0..300 {
        let loss = net
            .forward(&x, &Mode::Train(st_core::models::Branches::single(true)))
            .cross_entropy_for_logits(&y);
        opt.backward_step(&loss);
    }
    (vs, net)
}
