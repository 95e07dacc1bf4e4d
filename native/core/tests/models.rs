//! Model shapes, parameter counts and reference tensor names.

use st_core::models::{build_model, list_models, Branches, Mode};
use tch::{Device, Kind, Tensor};

#[test]
fn parameter_counts_match_the_reference_models() {
    let infos = list_models(10);
    let count = |name: &str| infos.iter().find(|m| m.name == name).unwrap().parameters;
    assert_eq!(count("small_cnn"), 312_202);
    assert_eq!(count("resnet18"), 11_173_962);
}

#[test]
fn tensor_names_follow_pytorch() {
    let m = build_model("resnet18", 10, [3, 32, 32], Device::Cpu).unwrap();
    let vars = m.vs.variables();
    for name in [
        "conv1.weight",
        "bn1.running_mean",
        "layer1.0.bn1.running_mean",
        "layer1.0.bn1.num_batches_tracked",
        "layer2.0.shortcut.0.weight",
        "layer2.0.shortcut.1.running_var",
        "layer4.1.conv2.weight",
        "linear.weight",
        "linear.bias",
    ] {
        assert!(vars.contains_key(name), "missing {name}");
    }
    let m = build_model("small_cnn", 10, [1, 28, 28], Device::Cpu).unwrap();
    let vars = m.vs.variables();
    for name in [
        "feature_extractor.conv1.weight",
        "feature_extractor.conv4.bias",
        "classifier.fc1.weight",
        "classifier.fc3.bias",
    ] {
        assert!(vars.contains_key(name), "missing {name}");
    }
    assert_eq!(vars.len(), 14);
}

#[test]
fn forward_shapes_and_wrong_input_shape_is_refused() {
    let m = build_model("small_cnn", 10, [1, 28, 28], Device::Cpu).unwrap();
    let x = Tensor::rand([3, 1, 28, 28], (Kind::Float, Device::Cpu));
    assert_eq!(m.net.forward(&x, &Mode::Eval).size(), vec![3, 10]);
    assert_eq!(
        m.net
            .forward(&x, &Mode::Train(Branches::single(true)))
            .size(),
        vec![3, 10]
    );
    let e = build_model("resnet18", 10, [1, 28, 28], Device::Cpu)
        .err()
        .unwrap();
    assert!(
        e.to_string()
            .contains("resnet18 is built for inputs [3, 32, 32]"),
        "{e}"
    );
    let e = build_model("vgg", 10, [1, 28, 28], Device::Cpu)
        .err()
        .unwrap();
    assert!(e.to_string().contains("unknown model \"vgg\""), "{e}");
}

// ------------------------------------------------------------ the paper's models

/// Trainable parameters of `name` for `classes` classes.
fn parameters(name: &str, classes: i64) -> i64 {
    build_model(name, classes, [3, 32, 32], Device::Cpu)
        .unwrap()
        .parameter_count()
}

#[test]
fn parameter_counts_of_the_paper_models() {
    let infos = list_models(10);
    let count = |name: &str| infos.iter().find(|m| m.name == name).unwrap().parameters;
    // PyTorch's sum(p.numel() for p in model.parameters()) of the reference code.
    assert_eq!(count("preact_resnet18"), 11_172_170);
    // The TRADES WRN code without its unused sub_block1 (with it: 48,262,586,
    // 12,086,746 and 38,119,866).
    assert_eq!(count("wrn34_10"), 46_160_474);
    assert_eq!(count("wrn34_5"), 11_554_074);
    assert_eq!(count("wrn28_10"), 36_479_194);
    assert_eq!(
        infos.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(),
        [
            "small_cnn",
            "resnet18",
            "preact_resnet18",
            "wrn34_10",
            "wrn34_5",
            "wrn28_10"
        ]
    );
    // Only the classifier depends on the class count.
    assert_eq!(parameters("resnet18", 100), 11_220_132);
    assert_eq!(parameters("preact_resnet18", 100), 11_218_340);
}

/// Asserts `name`'s variables include `present`, exclude `absent`, and number `total`.
fn assert_names(name: &str, present: &[&str], absent: &[&str], total: usize) {
    let m = build_model(name, 10, [3, 32, 32], Device::Cpu).unwrap();
    let vars = m.vs.variables();
    for n in present {
        assert!(vars.contains_key(*n), "{name}: missing {n}");
    }
    for n in absent {
        assert!(!vars.contains_key(*n), "{name}: unexpected {n}");
    }
    assert_eq!(vars.len(), total, "{name}: variable count");
}

#[test]
fn preact_resnet18_names_follow_the_awp_code() {
    // 1 stem conv; 8 blocks of bn1 (5 tensors), conv1, bn2 (5), conv2; three
    // 1×1 shortcut convs; the final bn (5) and linear (2).
    assert_names(
        "preact_resnet18",
        &[
            "conv1.weight",
            "layer1.0.bn1.weight",
            "layer1.0.bn1.running_mean",
            "layer1.0.conv1.weight",
            "layer1.0.bn2.num_batches_tracked",
            "layer1.1.conv2.weight",
            "layer2.0.shortcut.0.weight",
            "layer3.0.shortcut.0.weight",
            "layer4.0.shortcut.0.weight",
            "layer4.1.bn2.running_var",
            "layer4.1.conv2.weight",
            "bn.weight",
            "bn.bias",
            "bn.running_mean",
            "bn.running_var",
            "bn.num_batches_tracked",
            "linear.weight",
            "linear.bias",
        ],
        &[
            "bn1.weight",
            "conv1.bias",
            "layer1.0.shortcut.0.weight",
            "layer2.0.shortcut.1.weight",
            "layer2.1.shortcut.0.weight",
        ],
        1 + 8 * 12 + 3 + 5 + 2,
    );
}

#[test]
fn wide_resnet_names_follow_the_trades_code() {
    let common_names = [
        "conv1.weight",
        "block1.layer.0.bn1.weight",
        "block1.layer.0.bn1.running_mean",
        "block1.layer.0.conv1.weight",
        "block1.layer.0.bn2.num_batches_tracked",
        "block1.layer.0.conv2.weight",
        "block1.layer.0.convShortcut.weight",
        "block2.layer.0.convShortcut.weight",
        "block3.layer.0.convShortcut.weight",
        "block3.layer.3.conv2.weight",
        "bn1.weight",
        "bn1.bias",
        "bn1.running_mean",
        "bn1.running_var",
        "bn1.num_batches_tracked",
        "fc.weight",
        "fc.bias",
    ];
    let not_built = [
        "conv1.bias",
        "block1.layer.1.convShortcut.weight",
        "sub_block1.layer.0.conv1.weight",
        "linear.weight",
    ];
    // 1 stem conv; 3n blocks of bn1 (5 tensors), conv1, bn2 (5), conv2; three
    // 1×1 shortcut convs; the final bn1 (5) and fc (2).
    for (name, n, last) in [
        ("wrn34_10", 5, "block3.layer.4.conv2.weight"),
        ("wrn34_5", 5, "block3.layer.4.conv2.weight"),
        ("wrn28_10", 4, "block3.layer.3.bn2.running_var"),
    ] {
        let mut present = common_names.to_vec();
        present.push(last);
        let mut absent = not_built.to_vec();
        absent.push(if n == 5 {
            "block3.layer.5.bn1.weight"
        } else {
            "block3.layer.4.bn1.weight"
        });
        assert_names(name, &present, &absent, 1 + 3 * n * 12 + 3 + 5 + 2);
    }
}

#[test]
fn paper_models_forward_a_batch_of_two() {
    let x = Tensor::rand([2, 3, 32, 32], (Kind::Float, Device::Cpu));
    for name in [
        "resnet18",
        "preact_resnet18",
        "wrn34_10",
        "wrn34_5",
        "wrn28_10",
    ] {
        let m = build_model(name, 10, [3, 32, 32], Device::Cpu).unwrap();
        let eval = tch::no_grad(|| m.net.forward(&x, &Mode::Eval));
        assert_eq!(eval.size(), vec![2, 10], "{name}");
        assert!(eval.isfinite().all().int64_value(&[]) != 0, "{name}");
        let train = tch::no_grad(|| m.net.forward(&x, &Mode::Train(Branches::single(true))));
        assert_eq!(train.size(), vec![2, 10], "{name}");
        let e = build_model(name, 10, [1, 28, 28], Device::Cpu)
            .err()
            .unwrap();
        assert!(
            e.to_string().contains("built for inputs [3, 32, 32]"),
            "{e}"
        );
    }
}

#[test]
fn activation_estimates_grow_with_the_model() {
    let acts = |name: &str| {
        build_model(name, 10, [3, 32, 32], Device::Cpu)
            .unwrap()
            .activations_per_sample
    };
    let resnet = acts("resnet18");
    let preact = acts("preact_resnet18");
    // Same widths and resolutions: within a fifth of each other.
    assert!((preact - resnet).abs() * 5 < resnet, "{preact} vs {resnet}");
    let (w34_10, w34_5, w28_10) = (acts("wrn34_10"), acts("wrn34_5"), acts("wrn28_10"));
    assert!(w34_10 > w28_10 && w28_10 > w34_5 && w34_5 > resnet);
    // WRN-34-10 is 10 × 16 channels wide at 32×32 over 5 blocks: several
    // million floats per image.
    assert!((5_000_000..20_000_000).contains(&w34_10), "{w34_10}");
}

// ------------------------------------------------------------ reference state dicts

fn tmp_file(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("st-core-models-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

/// A state dict as the reference WRN code saves it: the model's tensors plus
/// its unused `sub_block1`, a copy of `block1`'s shapes.
fn with_sub_block1(
    vars: &[(String, Tensor)],
    template: &[(String, Tensor)],
) -> Vec<(String, Tensor)> {
    let mut out: Vec<_> = vars
        .iter()
        .map(|(n, t)| (n.clone(), t.shallow_clone()))
        .collect();
    for (n, t) in template {
        if let Some(rest) = n.strip_prefix("block1.") {
            let value = if t.kind() == Kind::Int64 {
                t.zeros_like() // num_batches_tracked
            } else {
                t.randn_like()
            };
            out.push((format!("sub_block1.{rest}"), value));
        }
    }
    out
}

fn sorted_vars(vs: &tch::nn::VarStore) -> Vec<(String, Tensor)> {
    let mut v: Vec<_> = vs.variables().into_iter().collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[test]
fn a_reference_wrn_state_dict_with_sub_block1_loads_and_ignores_it() {
    use st_core::checkpoint;
    let m = build_model("wrn34_5", 10, [3, 32, 32], Device::Cpu).unwrap();
    let vars = sorted_vars(&m.vs);
    let file = with_sub_block1(&vars, &vars);
    assert!(file
        .iter()
        .any(|(n, _)| n == "sub_block1.layer.0.convShortcut.weight"));
    let path = tmp_file("wrn34_5.safetensors");
    Tensor::write_safetensors(&file, &path).unwrap();

    let mut back = build_model("wrn34_5", 10, [3, 32, 32], Device::Cpu).unwrap();
    let info = checkpoint::load(&mut back.vs, &path, "wrn34_5").unwrap();
    assert!(!info.verified);
    for ((n, a), (_, b)) in vars.iter().zip(sorted_vars(&back.vs)) {
        assert!(a.equal(&b), "{n} was not loaded");
    }

    // Any other extra tensor is still refused.
    let mut odd = file;
    odd.push((
        "block4.layer.0.conv1.weight".into(),
        Tensor::zeros([1], (Kind::Float, Device::Cpu)),
    ));
    Tensor::write_safetensors(&odd, &path).unwrap();
    let e = checkpoint::load(&mut back.vs, &path, "wrn34_5")
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("1 unexpected tensor: block4.layer.0.conv1.weight"),
        "{e}"
    );
    assert!(!e.contains("sub_block1"), "{e}");
    let _ = std::fs::remove_file(&path);
}

#[test]
fn sub_block1_tensors_are_refused_for_other_models() {
    use st_core::checkpoint;
    let wrn = build_model("wrn34_5", 10, [3, 32, 32], Device::Cpu).unwrap();
    let m = build_model("resnet18", 10, [3, 32, 32], Device::Cpu).unwrap();
    let file = with_sub_block1(&sorted_vars(&m.vs), &sorted_vars(&wrn.vs));
    let path = tmp_file("resnet18.safetensors");
    Tensor::write_safetensors(&file, &path).unwrap();
    let mut back = build_model("resnet18", 10, [3, 32, 32], Device::Cpu).unwrap();
    let e = checkpoint::load(&mut back.vs, &path, "resnet18")
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("does not fit model resnet18") && e.contains("unexpected tensors: sub_block1."),
        "{e}"
    );
    let _ = std::fs::remove_file(&path);
}
