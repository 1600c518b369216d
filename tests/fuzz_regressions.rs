//! Replays the fuzzers' seed inputs and every input that once found a bug
//! (`fuzz/seeds/<target>/`, `fuzz/regressions/<target>/`) through the same
//! harnesses the fuzz targets run, so a fixed finding stays fixed in CI.

#[path = "../fuzz/harness/ocpp_session.rs"]
mod ocpp_session;
#[path = "../fuzz/harness/rest_bodies.rs"]
mod rest_bodies;

use std::path::Path;

/// The inputs kept for `target`, with their file names.
fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut inputs = Vec::new();
    for kind in ["seeds", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(kind).join(target)) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_file() {
                let name = path.display().to_string();
                inputs.push((name, std::fs::read(&path).expect("readable input")));
            }
        }
    }
    inputs.sort();
    inputs
}

#[test]
fn ocpp_session_inputs_stay_fixed() {
    let inputs = inputs("ocpp_session");
    assert!(!inputs.is_empty(), "no inputs under fuzz/");
    for (name, data) in inputs {
        let outcome = std::panic::catch_unwind(|| ocpp_session::run(&data));
        assert!(outcome.is_ok(), "{name} breaks the protocol core again");
    }
}

#[test]
fn rest_body_inputs_stay_fixed() {
    let inputs = inputs("rest_bodies");
    assert!(!inputs.is_empty(), "no inputs under fuzz/");
    for (name, data) in inputs {
        let outcome = std::panic::catch_unwind(|| rest_bodies::run(&data));
        assert!(outcome.is_ok(), "{name} breaks a REST handler again");
    }
}
