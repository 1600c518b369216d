//! Fuzz target: request bodies of the REST API (see the harness).
#![no_main]

#[path = "../harness/rest_bodies.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::run(data));
