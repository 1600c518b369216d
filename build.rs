//! Embeds the vendored OCPP JSON schemas (`schema/ocpp/{v16,v201}/*.json`)
//! in the binary: generates `$OUT_DIR/ocpp_schemas.rs` with one
//! `(version dir, file stem, contents)` entry per file.

use std::fmt::Write;
use std::path::Path;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/ocpp");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut entries = Vec::new();
    for version in ["v16", "v201"] {
        let dir = root.join(version);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        for path in files {
            let stem = path
                .file_stem()
                .and_then(|s| s.to_str())
                .expect("utf-8 file name")
                .to_owned();
            entries.push((version, stem, path));
        }
    }
    let mut out = String::from("/// Embedded OCPP schemas: (version dir, file stem, JSON text).\n");
    out.push_str("pub static FILES: &[(&str, &str, &str)] = &[\n");
    for (version, stem, path) in entries {
        writeln!(
            out,
            "    ({version:?}, {stem:?}, include_str!({:?})),",
            path.display().to_string()
        )
        .expect("write to string");
    }
    out.push_str("];\n");
    let target = Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("ocpp_schemas.rs");
    std::fs::write(&target, out).expect("write generated schema list");
}
