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
