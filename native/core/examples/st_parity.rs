//! Writes a parity fixture for `benches/reference/st_reference.py parity`:
//! weights, a batch, and what st-core's batched ST step computes from them in
//! float64 (inner-loop points, loss, weight gradients, BatchNorm running
//! statistics afterwards). The PyTorch reference recomputes all of it with
//! separate forwards on the same libtorch and the same random stream.
//!
//!     cargo run --release --example st_parity -- <dir> <small_cnn|resnet>

use st_core::config::{Branches, StConfig};
use st_core::divergence::Reg;
use st_core::methods::st::SqueezeTraining;
use st_core::models::{resnet::ResNet, small_cnn::SmallCnn, Classifier};
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
    let st = SqueezeTraining::new(cfg.clone());
    let (x_adv, x_col) = st.inner(net.as_ref(), &x, &y);
    let out = st.outer(net.as_ref(), &x, &y, &x_adv, &x_col);
    out.loss.backward();
    write_tensor(dir, &mut tensors, "out/x_adv", &x_adv);
    write_tensor(dir, &mut tensors, "out/x_col", &x_col);
    write_tensor(dir, &mut tensors, "out/loss", &out.loss.view([1]));
    for (name, t) in vs.variables() {
        if t.requires_grad() {
            write_tensor(dir, &mut tensors, &format!("grad/{name}"), &t.grad());
        } else {
            write_tensor(dir, &mut tensors, &format!("after/{name}"), &t);
        }
    }
    let manifest = serde_json::json!({
        "model": model,
        "config": { "seed": seed, "classes": classes, "width": width, "epsilon": cfg.epsilon,
                    "stepSize": cfg.step_size, "steps": cfg.steps, "beta": cfg.beta },
        "tensors": tensors,
    });
    std::fs::write(
        dir.join("manifest.json"),
        serde_json::to_string_pretty(&manifest).unwrap(),
    )
    .unwrap();
    println!(
        "st_parity: wrote {} tensors for {model} to {}",
        manifest["tensors"].as_object().unwrap().len(),
        dir.display()
    );
}
