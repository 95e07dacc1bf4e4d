//! A saved AutoAttack state is trusted only when every byte of it checks
//! out: edits of its progress record are refused as corruption (checksum
//! over the whole header), an internally inconsistent progress is refused
//! even when its checksums were recomputed, a header fuzz never yields a
//! state that means something else, the fingerprint holds the images and
//! their source, and one state file has one evaluation at a time.

mod common;

use common::mlp::{split, trained_mlp};
use common::{seeded, small_cnn_checkpoint};
use st_core::attacks::{AttackSpec, AutoAttackVersion, Norm};
use st_core::autoattack::state_file;
use st_core::config::DeviceChoice;
use st_core::eval::{
    attack_table, evaluate_attacks, DataSource, EvalEvent, EvalRequest, ResumeSettings,
    TableSettings,
};
use st_core::models::Classifier;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use tch::Tensor;

fn aa() -> Vec<AttackSpec> {
    vec![AttackSpec::AutoAttack {
        name: "aa".into(),
        norm: Norm::Linf,
        epsilon: 0.1,
        version: AutoAttackVersion::Standard,
    }]
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("st-aa-state-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn settings<'a>(attacks: &'a [AttackSpec], prefix: &Path) -> TableSettings<'a> {
    TableSettings {
        attacks,
        batch_size: 4,
        seed: 3,
        keep_images: true,
        run: None,
        resume: Some(ResumeSettings {
            prefix: prefix.to_path_buf(),
            fingerprint: "test model".into(),
        }),
    }
}

/// Runs the table on the MLP fixture; Ok(None) when cancelled.
fn table(
    net: &dyn Classifier,
    prefix: &Path,
    cancel: Option<&AtomicBool>,
    sink: &mut dyn FnMut(EvalEvent),
) -> st_core::Result<Option<st_core::eval::Table>> {
    let attacks = aa();
    attack_table(
        net,
        &split(48, 5),
        &settings(&attacks, prefix),
        cancel,
        sink,
    )
}

/// A state saved in the middle of stage 2 (FAB-T), after APGD-CE and APGD-T.
fn state_in_stage_two(net: &dyn Classifier, prefix: &Path) -> PathBuf {
    let cancel = AtomicBool::new(false);
    let mut stage = 0;
    let stopped = table(net, prefix, Some(&cancel), &mut |e| match e {
        EvalEvent::Stage { stage_index, .. } => stage = stage_index,
        EvalEvent::Batch { .. } if stage == 2 => cancel.store(true, Ordering::Relaxed),
        _ => {}
    })
    .unwrap();
    assert!(stopped.is_none());
    let file = state_file(prefix, "aa");
    assert!(file.exists());
    file
}

/// The file's header: (length field + JSON) byte range.
fn header_end(bytes: &[u8]) -> usize {
    8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize
}

fn replace_once(bytes: &[u8], from: &str, to: &str) -> Vec<u8> {
    assert_eq!(from.len(), to.len(), "same-length edit");
    let end = header_end(bytes);
    let at = bytes[..end]
        .windows(from.len())
        .position(|w| w == from.as_bytes())
        .unwrap_or_else(|| panic!("{from} not in the header"));
    let mut out = bytes.to_vec();
    out[at..at + to.len()].copy_from_slice(to.as_bytes());
    out
}

fn progress(file: &Path) -> serde_json::Value {
    let (_, meta) = st_core::checkpoint::read_named(file).unwrap();
    serde_json::from_str(&meta["st_native.autoattack"]).unwrap()
}

/// Loading the state at `prefix`: Err (refused) or Ok (accepted; then the
/// run was cancelled at once and re-saved what it loaded).
fn load(net: &dyn Classifier, prefix: &Path) -> st_core::Result<()> {
    let cancel = AtomicBool::new(true);
    table(net, prefix, Some(&cancel), &mut |_| {}).map(|r| assert!(r.is_none()))
}

#[test]
fn same_length_edits_of_the_progress_record_are_refused_as_corrupt() {
    let _g = seeded(0);
    let (_vs, net) = trained_mlp();
    let dir = tmp("edits");
    let prefix = dir.join("eval");
    let file = state_in_stage_two(&net, &prefix);
    let original = std::fs::read(&file).unwrap();
    let p = progress(&file);
    assert_eq!(p["stage"], 2);
    let correct = p["results"][0]["correct"].as_i64().unwrap();
    let bumped = correct + 1;
    assert_eq!(bumped.to_string().len(), correct.to_string().len());
    // The progress record is a JSON string inside the header: quotes escaped.
    let edits = [
        ("\\\"stage\\\":2", "\\\"stage\\\":3"),
        ("\\\"stage\\\":2", "\\\"stage\\\":9"),
        (
            &*format!("\\\"correct\\\":{correct},"),
            &*format!("\\\"correct\\\":{bumped},"),
        ),
    ];
    for (from, to) in edits {
        std::fs::write(&file, replace_once(&original, from, to)).unwrap();
        let e = load(&net, &prefix).expect_err(to).to_string();
        assert!(e.contains("corrupt") && e.contains("header"), "{to}: {e}");
        assert!(e.contains("autoattack-state.safetensors"), "{e}");
    }
    // The untouched file still resumes.
    std::fs::write(&file, &original).unwrap();
    load(&net, &prefix).unwrap();
}

/// Rewrites the state with `edit` applied and the checksums recomputed (as
/// a bug in a writer would): only the consistency checks can catch it.
fn reseal(file: &Path, edit: impl FnOnce(&mut serde_json::Value, &mut Vec<(String, Tensor)>)) {
    let (mut tensors, meta) = st_core::checkpoint::read_named(file).unwrap();
    let mut p: serde_json::Value = serde_json::from_str(&meta["st_native.autoattack"]).unwrap();
    edit(&mut p, &mut tensors);
    let mut meta: HashMap<String, String> = meta
        .into_iter()
        .filter(|(k, _)| k.starts_with("st_native.") && !k.contains("crc32"))
        .collect();
    meta.insert("st_native.autoattack".into(), p.to_string());
    st_core::checkpoint::save_named(tensors, file, meta).unwrap();
}

#[test]
fn an_inconsistent_progress_is_refused_even_with_valid_checksums() {
    let _g = seeded(0);
    let (_vs, net) = trained_mlp();
    let dir = tmp("inconsistent");
    let prefix = dir.join("eval");
    let file = state_in_stage_two(&net, &prefix);
    let original = std::fs::read(&file).unwrap();
    type Edit = Box<dyn Fn(&mut serde_json::Value, &mut Vec<(String, Tensor)>)>;
    let edits: Vec<(&str, Edit)> = vec![
        ("stage 3", Box::new(|p, _| p["stage"] = 3.into())),
        ("stage 9", Box::new(|p, _| p["stage"] = 9.into())),
        (
            "correct + 1",
            Box::new(|p, _| {
                let c = p["results"][0]["correct"].as_i64().unwrap();
                p["results"][0]["correct"] = (c + 1).into();
            }),
        ),
        (
            "a stage renamed",
            Box::new(|p, _| p["results"][1]["name"] = "square".into()),
        ),
        (
            "position past the stage",
            Box::new(|p, _| p["next"] = 10_000.into()),
        ),
        (
            "other image count",
            Box::new(|p, _| p["samples"] = 47.into()),
        ),
        (
            "a broken point marked robust",
            Box::new(|_, tensors| {
                let robust = &mut tensors.iter_mut().find(|(n, _)| n == "robust").unwrap().1;
                let broken = Tensor::eq(robust, 0).nonzero().flatten(0, -1);
                assert!(broken.size()[0] > 0, "the fixture breaks points");
                let first = broken.int64_value(&[0]);
                let _ = robust.get(first).fill_(1);
            }),
        ),
        (
            "an input outside the ball",
            Box::new(|_, tensors| {
                let inputs = &mut tensors
                    .iter_mut()
                    .find(|(n, _)| n == "changed_inputs")
                    .unwrap()
                    .1;
                let _ = inputs.get(0).fill_(1.0);
                let _ = inputs.get(0).get(0).get(0).fill_(0.0);
            }),
        ),
    ];
    for (what, edit) in edits {
        std::fs::write(&file, &original).unwrap();
        reseal(&file, edit);
        let e = load(&net, &prefix).expect_err(what).to_string();
        assert!(e.contains("inconsistent"), "{what}: {e}");
    }
}

#[test]
fn a_header_fuzz_never_yields_a_state_that_means_something_else() {
    let _g = seeded(0);
    let (_vs, net) = trained_mlp();
    let dir = tmp("fuzz");
    let prefix = dir.join("eval");
    let file = state_in_stage_two(&net, &prefix);
    let original = std::fs::read(&file).unwrap();
    let want = progress(&file);
    let (want_tensors, _) = st_core::checkpoint::read_named(&file).unwrap();
    let end = header_end(&original);
    let (mut refused, mut same) = (0, 0);
    // Every header byte once, xor-ed with a pseudo-random non-zero value.
    let mut rng: u64 = 0x9e37_79b9_7f4a_7c15;
    for at in 0..end {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let mut bytes = original.clone();
        bytes[at] ^= (rng % 255 + 1) as u8;
        std::fs::write(&file, &bytes).unwrap();
        match load(&net, &prefix) {
            Err(_) => refused += 1,
            Ok(()) => {
                // Accepted: then it must have meant exactly the original
                // (e.g. padding turned into other whitespace).
                let mut got = progress(&file);
                got["stageSeconds"] = want["stageSeconds"].clone();
                assert_eq!(got, want, "byte {at} changed the meaning");
                let (tensors, _) = st_core::checkpoint::read_named(&file).unwrap();
                for ((a, x), (b, y)) in tensors.iter().zip(&want_tensors) {
                    assert!(a == b && x.equal(y), "byte {at} changed {a}");
                }
                same += 1;
            }
        }
    }
    eprintln!("header fuzz: {end} bytes, {refused} refused, {same} accepted unchanged");
    assert_eq!(refused + same, end);
    assert!(refused as f64 > 0.9 * end as f64, "{refused} of {end}");
}

#[test]
fn a_second_evaluation_of_the_same_state_is_refused_while_the_first_runs() {
    let _g = seeded(0);
    let dir = tmp("lock");
    let prefix = dir.join("eval");
    let (in_batch_tx, in_batch_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let first = {
        let prefix = prefix.clone();
        std::thread::spawn(move || {
            let (_vs, net) = trained_mlp();
            let cancel = AtomicBool::new(false);
            let mut waited = false;
            table(&net, &prefix, Some(&cancel), &mut |e| {
                if let (EvalEvent::Batch { .. }, false) = (e, waited) {
                    waited = true;
                    in_batch_tx.send(()).unwrap();
                    go_rx.recv().unwrap();
                    cancel.store(true, Ordering::Relaxed);
                }
            })
            .map(|r| r.is_none())
        })
    };
    in_batch_rx.recv().unwrap();
    let (_vs, net) = trained_mlp();
    let e = match table(&net, &prefix, None, &mut |_| {}) {
        Err(e) => e,
        Ok(_) => panic!("two evaluations shared one state file"),
    };
    assert_eq!(e.code(), "ERR_LOCKED");
    let text = e.to_string();
    assert!(
        text.contains(&format!("pid {}", std::process::id())),
        "{text}"
    );
    go_tx.send(()).unwrap();
    assert!(
        first.join().unwrap().unwrap(),
        "the first was cancelled cleanly"
    );
    // Released: the state it saved resumes now.
    load(&net, &prefix).unwrap();
    assert!(!st_core::state_lock::lock_path(&state_file(&prefix, "aa")).exists());
}

fn request(path: &Path, prefix: &Path, source: &str) -> EvalRequest {
    EvalRequest {
        checkpoint: path.display().to_string(),
        model: "small_cnn".into(),
        num_classes: 10,
        attacks: aa(),
        batch_size: 4,
        max_samples: Some(8),
        seed: 4,
        normalize: None,
        device: DeviceChoice::Cpu,
        save_adversarial: None,
        run: None,
        resume_prefix: Some(prefix.display().to_string()),
        data_source: Some(DataSource {
            dataset: source.into(),
            split: "test".into(),
        }),
    }
}

#[test]
fn a_state_resumes_only_on_the_same_images_from_the_same_source() {
    let _g = seeded(0);
    let dir = tmp("images");
    let (path, images, labels) = small_cnn_checkpoint(&dir);
    let prefix = dir.join("eval");
    let shape = [1, 28, 28];
    let cancel = AtomicBool::new(false);
    let req = request(&path, &prefix, "mnist");
    let stopped = evaluate_attacks(
        &req,
        &images,
        &labels,
        shape,
        &mut |e| {
            if let EvalEvent::Stage { .. } = e {
                cancel.store(true, Ordering::Relaxed)
            }
        },
        Some(&cancel),
    )
    .unwrap();
    assert!(stopped.is_none());
    assert!(state_file(&prefix, "aa").exists());
    let refused = |req: &EvalRequest, images: &[u8], labels: &[u8]| {
        let cancel = AtomicBool::new(true);
        match evaluate_attacks(req, images, labels, shape, &mut |_| {}, Some(&cancel)) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("resumed a state on other images"),
        }
    };
    // Same shape and count, one pixel of one evaluated image different.
    let mut other = images.clone();
    other[5 * 784 + 400] ^= 0x40;
    let e = refused(&req, &other, &labels);
    assert!(e.contains("other images") && e.contains("sha256"), "{e}");
    // Same pixels, one label different.
    let mut other_labels = labels.clone();
    other_labels[3] = (other_labels[3] + 1) % 10;
    let e = refused(&req, &images, &other_labels);
    assert!(e.contains("sha256"), "{e}");
    // Same bytes from another dataset (as two same-shaped datasets would be).
    let e = refused(&request(&path, &prefix, "fashion-mnist"), &images, &labels);
    assert!(e.contains("fashion-mnist test split"), "{e}");
    // Images after the evaluated ones do not matter.
    let mut beyond = images.clone();
    beyond[20 * 784] ^= 1;
    let cancel = AtomicBool::new(true);
    let r = evaluate_attacks(&req, &beyond, &labels, shape, &mut |_| {}, Some(&cancel)).unwrap();
    assert!(r.is_none(), "accepted and cancelled at once");
}
