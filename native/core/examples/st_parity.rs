//! Writes a parity fixture for the PyTorch references: weights, a batch, and
//! what st-core's step of a method computes from them in float64 (inner-loop
//! points, loss, weight gradients, BatchNorm running statistics afterwards;
//! for AWP also the perturbed weights and the weights after the SGD step and
//! the restore). The references recompute all of it with separate forwards
//! on the same libtorch and the same random stream:
//! `benches/reference/st_reference.py parity DIR` for `st`,
//! `benches/reference/methods_reference.py parity DIR` for the others.
//!
//!     cargo run --release --example st_parity -- <dir> <small_cnn|resnet> \
//!         [st|trades|mart|collaborative|trades_awp|st_awp]

use st_core::config::{
    AwpConfig, AwpInner, Branches, CollaborativeConfig, MartConfig, OptimizerConfig, StConfig,
    TradesConfig,
};
use st_core::divergence::Reg;
use st_core::methods::awp::{perturbed_variables, Awp};
use st_core::methods::collaborative::Collaborative;
use st_core::methods::mart::Mart;
use st_core::methods::st::SqueezeTraining;
use st_core::methods::trades::Trades;
use st_core::methods::{Method, StepLoss};
use st_core::models::{resnet::ResNet, small_cnn::SmallCnn, Classifier};
use st_core::optim::Sgd;
use std::io::Write;
use std::path::Path;
use tch::{nn::VarStore, Device, Kind, Tensor};

fn write_tensor(
    dir: &Path,
    manifest: &mut serde_json::Map<String, serde_json::Value>,
    name: &str,
    t: &Tensor,
) {
    let t = t.detach().to_device(Device::Cpu).contiguous();
    let (dtype, bytes): (&str, Vec<u8>) = match t.kind() {
        Kind::Int64 => (
            "i64",
            Vec::<i64>::try_from(t.flatten(0, -1))
                .unwrap()
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect(),
        ),
        _ => (
            "f64",
            Vec::<f64>::try_from(t.to_kind(Kind::Double).flatten(0, -1))
                .unwrap()
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect(),
        ),
    };
    let file = format!("{}.bin", name.replace('/', "__"));
    std::fs::File::create(dir.join(&file))
        .unwrap()
        .write_all(&bytes)
        .unwrap();
    manifest.insert(
        name.into(),
        serde_json::json!({ "file": file, "dtype": dtype, "shape": t.size() }),
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (dir, which) = (
        Path::new(&args[1]),
        args.get(2).map(String::as_str).unwrap_or("small_cnn"),
    );
    let method = args.get(3).map(String::as_str).unwrap_or("st");
    std::fs::create_dir_all(dir).unwrap();
    tch::manual_seed(1234);
    let mut vs = VarStore::new(Device::Cpu);
    let (net, shape, classes, width, model): (Box<dyn Classifier>, [i64; 3], i64, i64, &str) =
        match which {
            "resnet" => (
                Box::new(ResNet::resnet18(&vs.root(), 3, 5, 4)),
                [3, 8, 8],
                5,
                4,
                "resnet18",
            ),
            _ => (
                Box::new(SmallCnn::new(&vs.root(), 1, 10, 0.0)),
                [1, 28, 28],
                10,
                0,
                "small_cnn",
            ),
        };
    vs.double();
    tch::no_grad(|| {
        // The reference zero-inits fc3; random values make the test meaningful.
        for (name, mut t) in vs.variables() {
            if name.starts_with("classifier.fc3") {
                t.copy_(&(t.randn_like() * 0.3));
            }
        }
    });
    let batch = 12;
    let x = Tensor::rand(
        [batch, shape[0], shape[1], shape[2]],
        (Kind::Double, Device::Cpu),
    );
    let y = Tensor::randint(classes, [batch], (Kind::Int64, Device::Cpu));
    let cfg = StConfig {
        reg: Reg::Symmkl,
        beta: 6.0,
        epsilon: 0.1,
        step_size: 0.02,
        steps: 4,
        branches: Branches::Batched,
    };

    let mut tensors = serde_json::Map::new();
    for (name, t) in vs.variables() {
        write_tensor(dir, &mut tensors, &format!("weights/{name}"), &t);
    }
    write_tensor(dir, &mut tensors, "x", &x);
    write_tensor(dir, &mut tensors, "y", &y);

    let seed = 77;
    tch::manual_seed(seed);
    let ball = (cfg.epsilon, cfg.step_size, cfg.steps);
    let trades_cfg = TradesConfig {
        beta: 6.0,
        epsilon: ball.0,
        step_size: ball.1,
        steps: ball.2,
    };
    let (beta, gamma) = match method {
        "st" => {
            let st = SqueezeTraining::new(cfg.clone());
            let (x_adv, x_col) = st.inner(net.as_ref(), &x, &y);
            let out = st.outer(net.as_ref(), &x, &y, &x_adv, &x_col);
            out.loss.backward();
            write_tensor(dir, &mut tensors, "out/x_adv", &x_adv);
            write_tensor(dir, &mut tensors, "out/x_col", &x_col);
            write_tensor(dir, &mut tensors, "out/loss", &out.loss.view([1]));
            (cfg.beta, 0.0)
        }
        "trades" => {
            let m = Trades::new(trades_cfg.clone());
            let x_adv = m.inner(net.as_ref(), &x);
            let out = m.outer(net.as_ref(), &x, &y, &x_adv);
            out.loss.backward();
            write_tensor(dir, &mut tensors, "out/x_adv", &x_adv);
            write_tensor(dir, &mut tensors, "out/loss", &out.loss.view([1]));
            (trades_cfg.beta, 0.0)
        }
        "mart" => {
            let m = Mart::new(MartConfig {
                beta: 5.0,
                epsilon: ball.0,
                step_size: ball.1,
                steps: ball.2,
            });
            let x_adv = m.inner(net.as_ref(), &x, &y);
            let out = m.outer(net.as_ref(), &x, &y, &x_adv);
            out.loss.backward();
            write_tensor(dir, &mut tensors, "out/x_adv", &x_adv);
            write_tensor(dir, &mut tensors, "out/loss", &out.loss.view([1]));
            (5.0, 0.0)
        }
        "collaborative" => {
            let m = Collaborative::new(CollaborativeConfig {
                beta: 6.0,
                epsilon: ball.0,
                step_size: ball.1,
                steps: ball.2,
            });
            let x_col = m.inner(net.as_ref(), &x, &y);
            let out = m.outer(net.as_ref(), &x, &y, &x_col);
            out.loss.backward();
            write_tensor(dir, &mut tensors, "out/x_col", &x_col);
            write_tensor(dir, &mut tensors, "out/loss", &out.loss.view([1]));
            (6.0, 0.0)
        }
        "trades_awp" | "st_awp" => {
            let gamma = 5e-3;
            let (inner, beta) = if method == "st_awp" {
                (AwpInner::St(cfg.clone()), cfg.beta)
            } else {
                (AwpInner::Trades(trades_cfg.clone()), trades_cfg.beta)
            };
            // The inner points first, replayed from the same seed below
            // (the inner loops leave no state behind: running statistics
            // frozen or eval mode, no dropout in these nets).
            if method == "st_awp" {
                let (x_adv, x_col) = SqueezeTraining::new(cfg.clone()).inner(net.as_ref(), &x, &y);
                write_tensor(dir, &mut tensors, "out/x_adv", &x_adv);
                write_tensor(dir, &mut tensors, "out/x_col", &x_col);
            } else {
                let x_adv = Trades::new(trades_cfg.clone()).inner(net.as_ref(), &x);
                write_tensor(dir, &mut tensors, "out/x_adv", &x_adv);
            }
            tch::manual_seed(seed);
            let mut awp = Awp::new(
                AwpConfig {
                    inner,
                    gamma,
                    warmup: 0,
                },
                &vs,
            );
            let mut opt = Sgd::new(&vs, &awp_optimizer());
            // One training step exactly as the training loop runs it.
            awp.begin_epoch(1);
            let out: StepLoss = awp.loss(net.as_ref(), &x, &y);
            for (name, w) in perturbed_variables(&vs) {
                write_tensor(dir, &mut tensors, &format!("perturbed/{name}"), &w);
            }
            opt.zero_grad();
            out.loss.backward();
            write_tensor(dir, &mut tensors, "out/loss", &out.loss.view([1]));
            for (name, t) in vs.variables() {
                if t.requires_grad() {
                    write_tensor(dir, &mut tensors, &format!("grad/{name}"), &t.grad());
                }
            }
            opt.step();
            awp.after_step();
            for (name, t) in vs.variables() {
                if t.requires_grad() {
                    write_tensor(dir, &mut tensors, &format!("restored/{name}"), &t);
                }
            }
            (beta, gamma)
        }
        other => panic!("unknown method {other}"),
    };
    for (name, t) in vs.variables() {
        if t.requires_grad() {
            if !tensors.contains_key(&format!("grad/{name}")) {
                write_tensor(dir, &mut tensors, &format!("grad/{name}"), &t.grad());
            }
        } else {
            write_tensor(dir, &mut tensors, &format!("after/{name}"), &t);
        }
    }
    let manifest = serde_json::json!({
        "model": model,
        "method": method,
        "config": { "seed": seed, "classes": classes, "width": width, "epsilon": cfg.epsilon,
                    "stepSize": cfg.step_size, "steps": cfg.steps, "beta": beta,
                    "gamma": gamma, "optimizer": awp_optimizer() },
        "tensors": tensors,
    });
    std::fs::write(
        dir.join("manifest.json"),
        serde_json::to_string_pretty(&manifest).unwrap(),
    )
    .unwrap();
    println!(
        "st_parity: wrote {} tensors for {method} on {model} to {}",
        manifest["tensors"].as_object().unwrap().len(),
        dir.display()
    );
}

/// The SGD of the AWP step (the paper's: momentum 0.9, weight decay 5e-4).
fn awp_optimizer() -> OptimizerConfig {
    OptimizerConfig {
        lr: 0.1,
        momentum: 0.9,
        weight_decay: 5e-4,
        nesterov: false,
        milestones: vec![],
        gamma: 0.1,
        schedule: Default::default(),
    }
}
