//! The memory estimate: monotone in what it depends on, and a run that
//! cannot fit is refused with ERR_OUT_OF_MEMORY before any work. (One test
//! in this file: it sets ST_NATIVE_MEMORY_LIMIT for the whole process.)

use st_core::config::TrainConfig;
use st_core::events::VecSink;
use st_core::memory;
use st_core::train::{preflight, train, DataSizes, TrainData};
use std::sync::atomic::AtomicBool;

fn config(batch: i64, method: &str) -> TrainConfig {
    TrainConfig::from_json(&format!(
        r#"{{
        "model": "small_cnn", "numClasses": 10, "method": {method}, "epochs": 1, "batchSize": {batch},
        "optimizer": {{"lr": 0.01, "momentum": 0.9, "weightDecay": 0, "nesterov": false, "milestones": [], "gamma": 0.1}},
        "augment": {{"randomCropPadding": 0, "horizontalFlip": false}},
        "eval": {{"epsilon": 0.1, "stepSize": 0.02, "steps": 1, "randomStart": true, "batchSize": 8, "maxSamples": null}},
        "seed": 0, "device": "cpu", "threads": null, "outDir": "/tmp/st-core-memory-test-never-created", "initCheckpoint": null
    }}"#
    ))
    .unwrap()
}

const ST: &str = r#"{"name": "st", "reg": "symmkl", "beta": 1.0, "epsilon": 0.1, "stepSize": 0.05, "steps": 1, "branches": "batched"}"#;

#[test]
fn the_estimate_grows_with_batch_and_method_and_a_run_that_cannot_fit_is_refused() {
    let m = st_core::models::build_model("small_cnn", 10, [1, 28, 28], tch::Device::Cpu).unwrap();
    let (p, a) = (m.parameter_count(), m.activations_per_sample);
    let st64 = memory::training_bytes(&config(64, ST), p, a, 0);
    let st128 = memory::training_bytes(&config(128, ST), p, a, 0);
    let nat128 = memory::training_bytes(&config(128, r#"{"name": "natural"}"#), p, a, 0);
    assert!(st64 < st128 && nat128 < st128, "{st64} {st128} {nat128}");
    // The model state alone: 4 copies of 312,202 float32 parameters.
    assert!(st64 > 4 * 4 * 312_202);

    let n = 256usize;
    let images: Vec<u8> = vec![7; n * 784];
    let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
    let data = TrainData {
        train_images: &images,
        train_labels: &labels,
        test_images: &images,
        test_labels: &labels,
        validation: None,
        shape: [1, 28, 28],
    };
    std::env::set_var(memory::LIMIT_ENV, "10000000"); // 10 MB
    let sizes = DataSizes {
        train: n as i64,
        test: n as i64,
        validation: None,
    };
    let e = preflight(&config(256, ST), [1, 28, 28], sizes, true).expect_err("must be refused");
    assert_eq!(e.code(), "ERR_OUT_OF_MEMORY", "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("batchSize 256")
            && msg.contains("0.01 GiB is available")
            && msg.contains(memory::LIMIT_ENV),
        "{msg}"
    );
    // train() itself checks the rest again but not memory (the binding's
    // preflight did, before the data was copied in).
    let e = train(
        &config(257, ST),
        &data,
        &mut VecSink::default(),
        &AtomicBool::new(false),
    )
    .expect_err("batch larger than the data");
    assert_eq!(e.code(), "ERR_INVALID_CONFIG", "{e}");
    std::env::remove_var(memory::LIMIT_ENV);
}

#[test]
fn an_allocation_libtorch_cannot_make_is_an_out_of_memory_error() {
    // 2^45 floats (128 TiB): malloc refuses at once, nothing is touched.
    let shape = [1i64 << 45];
    let e = tch::Tensor::f_zeros(shape, (tch::Kind::Float, tch::Device::Cpu))
        .expect_err("cannot be allocated");
    assert_eq!(st_core::CoreError::from(e).code(), "ERR_OUT_OF_MEMORY");
    // The panicking API (what the numerics use) carries the same message,
    // which the binding maps the same way.
    let panic = std::panic::catch_unwind(|| {
        tch::Tensor::zeros(shape, (tch::Kind::Float, tch::Device::Cpu))
    })
    .expect_err("panics");
    let msg = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(st_core::error::is_allocation_failure(&msg), "{msg}");
}
