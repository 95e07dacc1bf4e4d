//! The checkpoint format: round trip with metadata, and a corpus of bad
//! files (truncated, bit-flipped, wrong header, another architecture, wrong
//! dtype, NaN, a FIFO, oversized, a PyTorch file without our checksum), each
//! refused with a message that names the file and the problem, or loaded
//! with a notice where that is right.

mod common;
use common::seeded;
use st_core::checkpoint::{self, SaveMeta};
use st_core::models::{build_model, Model};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

fn tmp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("st-core-ckpt-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn small() -> Model {
    build_model("small_cnn", 10, [1, 28, 28], Device::Cpu).unwrap()
}

const META: SaveMeta = SaveMeta {
    model: "small_cnn",
    num_classes: 10,
    epoch: 7,
    seed: 42,
    kind: "best",
};

fn saved(dir: &Path) -> (Model, PathBuf) {
    let m = small();
    // The zero-initialised last layer would hide a mix-up: make it non-zero.
    tch::no_grad(|| {
        for (_, mut t) in m.vs.variables() {
            t.copy_(&t.randn_like());
        }
    });
    let path = dir.join("m.safetensors");
    checkpoint::save(&m.vs, &path, &META).unwrap();
    (m, path)
}

fn load_err(path: &Path) -> String {
    let mut m = small();
    match checkpoint::load(&mut m.vs, path, "small_cnn") {
        Ok(_) => panic!("{} should be refused", path.display()),
        Err(e) => {
            assert_eq!(e.code(), "ERR_CHECKPOINT", "{e}");
            let s = e.to_string();
            assert!(
                s.contains(&path.display().to_string()),
                "names the file: {s}"
            );
            s
        }
    }
}

fn same_weights(a: &Model, b: &Model) -> bool {
    let bv = b.vs.variables();
    a.vs.variables().iter().all(|(n, t)| t.equal(&bv[n]))
}

#[test]
fn round_trip_keeps_every_tensor_and_the_metadata() {
    let _rng = seeded(1);
    let dir = tmp_dir("roundtrip");
    let (m, path) = saved(&dir);
    let mut back = small();
    let info = checkpoint::load(&mut back.vs, &path, "small_cnn").unwrap();
    assert!(same_weights(&m, &back));
    assert!(info.verified);
    assert_eq!(info.model.as_deref(), Some("small_cnn"));
    assert_eq!(
        (
            info.num_classes,
            info.epoch,
            info.seed,
            info.kind.as_deref()
        ),
        (Some(10), Some(7), Some(42), Some("best"))
    );
    assert_eq!(checkpoint::inspect(&path).unwrap(), info);
    // No temp file is left beside it.
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(names, vec!["m.safetensors".to_string()]);
}

#[test]
fn flipped_bytes_in_tensor_data_are_detected() {
    let _rng = seeded(2);
    let dir = tmp_dir("flip");
    let (_, path) = saved(&dir);
    let mut bytes = std::fs::read(&path).unwrap();
    // Flip 100 bytes spread over the data section (after the header).
    let header = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize + 8;
    let span = bytes.len() - header;
    for i in 0..100 {
        bytes[header + (i * 7919) % span] ^= 0x5a;
    }
    let bad = dir.join("flipped.safetensors");
    std::fs::write(&bad, &bytes).unwrap();
    let e = load_err(&bad);
    assert!(e.contains("corrupt") && e.contains("checksum"), "{e}");
    // A single flipped bit, too.
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&bad, &bytes).unwrap();
    assert!(load_err(&bad).contains("checksum"));
}

#[test]
fn truncated_padded_and_garbage_files_are_refused() {
    let _rng = seeded(3);
    let dir = tmp_dir("truncated");
    let (_, path) = saved(&dir);
    let bytes = std::fs::read(&path).unwrap();
    let f = dir.join("bad.safetensors");
    for (what, content, expect) in [
        ("half", bytes[..bytes.len() / 2].to_vec(), "truncated"),
        (
            "one byte short",
            bytes[..bytes.len() - 1].to_vec(),
            "truncated",
        ),
        ("four bytes", bytes[..4].to_vec(), "not a safetensors file"),
        ("empty", vec![], "not a safetensors file"),
        (
            "padded",
            [bytes.clone(), vec![0u8; 16]].concat(),
            "truncated or padded",
        ),
        (
            "text",
            b"this is not a checkpoint at all".to_vec(),
            "not a safetensors file",
        ),
        (
            "header not JSON",
            [16u64.to_le_bytes().to_vec(), b"{not json at all".to_vec()].concat(),
            "not a safetensors file",
        ),
    ] {
        std::fs::write(&f, &content).unwrap();
        let e = load_err(&f);
        assert!(e.contains(expect), "{what}: {e}");
    }
    assert!(load_err(&dir.join("missing.safetensors")).contains("file not found"));
}

#[test]
fn another_architecture_or_class_count_is_refused_naming_the_tensor() {
    let _rng = seeded(4);
    let dir = tmp_dir("foreign");
    let (_, path) = saved(&dir);
    let mut resnet = build_model("resnet18", 10, [3, 32, 32], Device::Cpu).unwrap();
    let e = checkpoint::load(&mut resnet.vs, &path, "resnet18")
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("does not fit model resnet18") && e.contains("missing tensor"),
        "{e}"
    );
    let mut small5 = build_model("small_cnn", 5, [1, 28, 28], Device::Cpu).unwrap();
    let e = checkpoint::load(&mut small5.vs, &path, "small_cnn")
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("classifier.fc3.weight has shape [10, 200], model expects [5, 200]"),
        "{e}"
    );
}

/// Writes tensors the way PyTorch's `safetensors.torch.save_file` does: no
/// st-native metadata.
fn write_foreign(path: &Path, tensors: &[(String, Tensor)]) {
    Tensor::write_safetensors(tensors, path).unwrap();
}

fn variables(m: &Model) -> Vec<(String, Tensor)> {
    let mut v: Vec<_> = m.vs.variables().into_iter().collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[test]
fn a_file_without_our_checksum_loads_unverified() {
    let _rng = seeded(5);
    let dir = tmp_dir("foreign-ok");
    let m = small();
    let f = dir.join("torch.safetensors");
    write_foreign(&f, &variables(&m));
    let mut back = small();
    let info = checkpoint::load(&mut back.vs, &f, "small_cnn").unwrap();
    assert!(!info.verified);
    assert_eq!((info.model, info.epoch), (None, None));
    assert!(same_weights(&m, &back));
    // float64 and float16 weights are converted to the model's dtype.
    let doubles: Vec<_> = variables(&m)
        .into_iter()
        .map(|(n, t)| (n, t.to_kind(Kind::Double)))
        .collect();
    write_foreign(&f, &doubles);
    checkpoint::load(&mut back.vs, &f, "small_cnn").unwrap();
    assert!(same_weights(&m, &back));
}

#[test]
fn a_data_parallel_state_dict_loads_and_other_prefixes_are_shown_side_by_side() {
    let _rng = seeded(6);
    let dir = tmp_dir("prefix");
    let m = small();
    let prefixed = |prefix: &str| -> Vec<(String, Tensor)> {
        variables(&m)
            .into_iter()
            .map(|(n, t)| (format!("{prefix}{n}"), t))
            .collect()
    };
    // DataParallel / DDP: every key `module.<name>`, loaded as the model's.
    let f = dir.join("dp.safetensors");
    write_foreign(&f, &prefixed("module."));
    let mut back = small();
    checkpoint::load(&mut back.vs, &f, "small_cnn").unwrap();
    assert!(same_weights(&m, &back));
    // Another prefix: the missing and the unexpected names, both shown.
    write_foreign(&f, &prefixed("model."));
    let e = load_err(&f);
    let n = variables(&m).len();
    assert!(e.contains(&format!("{n} missing tensors: ")), "{e}");
    assert!(
        e.contains(&format!("{n} unexpected tensors: model.")),
        "{e}"
    );
    assert!(e.contains(&format!("and {} more", n - 4)), "{e}");
}

#[test]
fn wrong_dtype_and_non_finite_values_are_refused() {
    let _rng = seeded(6);
    let dir = tmp_dir("dtype");
    let m = small();
    let f = dir.join("bad.safetensors");
    let ints: Vec<_> = variables(&m)
        .into_iter()
        .map(|(n, t)| {
            let t = if n == "classifier.fc1.weight" {
                t.to_kind(Kind::Int64)
            } else {
                t
            };
            (n, t)
        })
        .collect();
    write_foreign(&f, &ints);
    let e = load_err(&f);
    assert!(
        e.contains("classifier.fc1.weight has dtype I64, expected a floating-point dtype"),
        "{e}"
    );
    let nan: Vec<_> = variables(&m)
        .into_iter()
        .map(|(n, t)| {
            let t = if n == "feature_extractor.conv2.weight" {
                t.fill(f64::NAN)
            } else {
                t
            };
            (n, t)
        })
        .collect();
    write_foreign(&f, &nan);
    let e = load_err(&f);
    assert!(
        e.contains("feature_extractor.conv2.weight holds NaN or infinite values"),
        "{e}"
    );
}

#[test]
fn non_finite_weights_are_never_saved() {
    let _rng = seeded(7);
    let dir = tmp_dir("nonfinite-save");
    let m = small();
    let path = dir.join("last.safetensors");
    checkpoint::save(&m.vs, &path, &META).unwrap();
    let before = std::fs::read(&path).unwrap();
    tch::no_grad(|| {
        let w = m.vs.variables()["classifier.fc2.bias"].shallow_clone();
        let _ = w.get(3).fill_(f64::INFINITY);
    });
    let e = checkpoint::save(&m.vs, &path, &META).err().unwrap();
    assert_eq!(e.code(), "ERR_NONFINITE_WEIGHTS");
    assert!(e.to_string().contains("classifier.fc2.bias"), "{e}");
    assert_eq!(std::fs::read(&path).unwrap(), before, "the good file stays");
    assert_eq!(
        checkpoint::first_nonfinite(&m.vs).as_deref(),
        Some("classifier.fc2.bias")
    );
}

#[test]
fn pipes_devices_folders_and_oversized_files_are_refused_without_reading() {
    let dir = tmp_dir("special");
    let fifo = dir.join("fifo.safetensors");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    if made.is_ok_and(|s| s.success()) {
        // Opening a FIFO for reading would block forever: it must not be opened.
        assert!(load_err(&fifo).contains("not a regular file"));
    }
    assert!(load_err(Path::new("/dev/zero")).contains("not a regular file"));
    assert!(load_err(&dir).contains("not a regular file"));
    let big = dir.join("big.safetensors");
    let f = std::fs::File::create(&big).unwrap();
    f.set_len(checkpoint::MAX_CHECKPOINT_BYTES + 1).unwrap(); // sparse: no disk used
    let e = load_err(&big);
    assert!(e.contains("larger than any checkpoint"), "{e}");
}

#[test]
fn a_failed_write_leaves_no_temp_file_and_keeps_the_old_file() {
    let dir = tmp_dir("failed-write");
    let target = dir.join("x.safetensors");
    std::fs::write(&target, b"old").unwrap();
    // Writing into a folder that disappeared fails; nothing may be left.
    let gone = dir.join("gone").join("x.safetensors");
    assert!(checkpoint::write_atomic(&gone, b"new").is_err());
    assert!(!checkpoint::temp_path(&gone).exists());
    checkpoint::write_atomic(&target, b"new").unwrap();
    assert_eq!(std::fs::read(&target).unwrap(), b"new");
    let leftovers: HashMap<_, _> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| (e.unwrap().file_name(), ()))
        .collect();
    assert_eq!(leftovers.len(), 1);
}
