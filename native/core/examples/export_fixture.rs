//! Writes, for every registered model, a checkpoint as st-native writes it
//! (`checkpoint::save`: weights and BatchNorm running statistics, with
//! non-trivial running statistics so eval mode matters), a small batch of
//! [0,1] images and st-native's eval-mode logits on it. The PyTorch side
//! (`benches/reference/export_check.py DIR`) loads each checkpoint with
//! `model.load_state_dict(safetensors.torch.load_file(path))` into the
//! reference definitions of `benches/reference/models.py` and compares logits.
//!
//!     cargo run --release --example export_fixture -- <dir> [model...]

use st_core::checkpoint::{save, save_named, SaveMeta};
use st_core::models::{build_model, list_models, Mode};
use std::collections::HashMap;
use std::path::Path;
use tch::{Device, Kind, Tensor};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = Path::new(
        args.first()
            .expect("usage: export_fixture <dir> [model...]"),
    );
    std::fs::create_dir_all(dir).expect("create the fixture folder");
    let names: Vec<String> = if args.len() > 1 {
        args[1..].to_vec()
    } else {
        list_models(10).into_iter().map(|m| m.name).collect()
    };
    tch::manual_seed(2024);
    let mut manifest = Vec::new();
    for name in &names {
        let info = list_models(10)
            .into_iter()
            .find(|m| &m.name == name)
            .unwrap_or_else(|| panic!("unknown model {name}"));
        let classes = 10;
        let m = build_model(name, classes, info.input_shape, Device::Cpu).expect("model builds");
        // Running statistics away from (0, 1), and a non-zero last layer.
        tch::no_grad(|| {
            for (var, mut t) in m.vs.variables() {
                if var.ends_with("running_mean") {
                    t.copy_(&(t.randn_like() * 0.1));
                } else if var.ends_with("running_var") {
                    t.copy_(&(t.rand_like() * 0.5 + 0.75));
                } else if var.ends_with("num_batches_tracked") {
                    let _ = t.fill_(7);
                } else if var.starts_with("fc.")
                    || var.contains("fc3")
                    || var.starts_with("linear.")
                {
                    t.copy_(&(t.randn_like() * 0.05));
                }
            }
        });
        let [c, h, w] = info.input_shape;
        let x = Tensor::rand([4, c, h, w], (Kind::Float, Device::Cpu));
        let logits = tch::no_grad(|| m.net.forward(&x, &Mode::Eval));
        let ckpt = dir.join(format!("{name}.safetensors"));
        save(
            &m.vs,
            &ckpt,
            &SaveMeta {
                model: name,
                num_classes: classes,
                epoch: 1,
                seed: 0,
                kind: "last",
            },
        )
        .expect("checkpoint written");
        save_named(
            vec![("x".into(), x), ("logits".into(), logits)],
            &dir.join(format!("{name}.io.safetensors")),
            HashMap::new(),
        )
        .expect("fixture written");
        manifest.push(serde_json::json!({ "model": name, "numClasses": classes }));
        eprintln!("export_fixture: {name}");
    }
    std::fs::write(
        dir.join("manifest.json"),
        serde_json::to_string(&manifest).expect("json"),
    )
    .expect("manifest written");
}
