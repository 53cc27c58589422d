//! The fuzz corpus and every crash reproducer (fuzz/corpus, fuzz/regressions), replayed
//! through the same target bodies the fuzzer runs (src/fuzzing.rs): what once crashed a
//! parser stays fixed, and what the fuzzer learned to reach keeps being reached.

use crate::common::repo;
use std::path::PathBuf;
use watchpost::fuzzing;

/// Every input of `target` in the corpus and the regressions, by path.
fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for dir in ["fuzz/corpus", "fuzz/regressions"] {
        let Ok(entries) = std::fs::read_dir(repo().join(dir).join(target)) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            if path.file_name().is_some_and(|n| n == ".keep") {
                continue;
            }
            out.push((path.clone(), std::fs::read(&path).unwrap()));
        }
    }
    out
}

fn replay(target: &str, run: impl Fn(&[u8])) {
    let all = inputs(target);
    assert!(!all.is_empty(), "no corpus for {target}");
    for (path, data) in all {
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&data))).is_err() {
            panic!("{target}: {} fails again", path.display());
        }
    }
}

#[test]
fn config_corpus() {
    replay("config", fuzzing::config_text);
}

#[test]
fn rest_config_item_corpus() {
    replay("rest_config_item", fuzzing::rest_config_item);
}

#[test]
fn mqtt_command_corpus() {
    replay("mqtt_command", fuzzing::mqtt_command);
}

#[test]
fn camera_url_corpus() {
    replay("camera_url", fuzzing::camera_url);
}

#[test]
fn outbox_row_corpus() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("outbox.db");
    replay("outbox_row", |d| fuzzing::outbox_row(d, &db));
}

#[test]
fn model_file_corpus() {
    let dir = tempfile::tempdir().unwrap();
    replay("model_file", |d| {
        let _ = fuzzing::model_file(d, dir.path());
    });
}

#[test]
fn a_model_with_an_empty_graph_is_refused_in_words() {
    // Found by the model_file target: an ONNX file whose graph has no input made tract index
    // past the end of its input list (a panic at start or on a model switch).
    let dir = tempfile::tempdir().unwrap();
    let err = fuzzing::model_file(&[0x3a, 0x00], dir.path()).expect("refused");
    assert!(err.contains("model.onnx"), "{err}");
    assert!(
        err.contains(
            "a detector has one image input and at least one output; this model has 0 inputs"
        ),
        "{err}"
    );
}

#[test]
fn a_model_that_makes_tracts_reader_panic_is_refused_in_words() {
    // Found by the model_file target: 123 bytes on which tract-onnx's graph builder panics
    // (`no entry found for key`) instead of returning an error.
    let crash =
        repo().join("fuzz/regressions/model_file/crash-ea08f69cdabe9d096590214b697749e1e001ed63");
    let dir = tempfile::tempdir().unwrap();
    let err = fuzzing::model_file(&std::fs::read(crash).unwrap(), dir.path()).expect("refused");
    assert!(err.contains("the ONNX reader failed on this file"), "{err}");
}
