//! Fuzz target: OCPP-J frames into the protocol core (see the harness).
#![no_main]

#[path = "../harness/ocpp_session.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::run(data));
