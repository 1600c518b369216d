//! One fuzz input through the OCPP-J protocol core, as a station would send
//! it: frame parsing, schema validation and the session state machine of
//! both versions, before and after boot, as a station CALL and as the answer
//! to a CSMS CALL. Shared by the fuzz target and the regression test.

use std::time::{Duration, Instant};

use serde_json::json;
use voltgate::ocpp::Version;
use voltgate::station::session::{Effect, Limits, OutboundCall, Session};

/// Runs one input; panics (the fuzzer's finding) on any broken invariant.
pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for version in [Version::V16, Version::V201] {
        for booted in [false, true] {
            let mut session: Session<u32> = Session::new(version, Limits::default());
            if booted {
                session.set_booted();
            }
            let now = Instant::now();
            let mut effects = Vec::new();
            // A CSMS CALL in flight, so the input may also be its answer.
            let reset = OutboundCall {
                action: "Reset",
                payload: if version == Version::V16 {
                    json!({"type": "Soft"})
                } else {
                    json!({"type": "Immediate"})
                },
                tag: 1,
            };
            let _ = session.queue_call(now, reset, &mut effects);
            session.handle_text(now, text, &mut effects);
            for line in text.lines().take(8) {
                session.handle_text(now, line, &mut effects);
            }
            // Answer every station CALL the session handed out, as handlers do.
            let handles: Vec<String> = effects
                .iter()
                .filter_map(|e| match e {
                    Effect::Handle { id, .. } => Some(id.clone()),
                    _ => None,
                })
                .collect();
            for id in handles {
                session.handle_reply(&id, Ok(json!({})), &mut effects);
            }
            session.handle_timeout(now + Duration::from_secs(3600), &mut effects);
            let undelivered = session.drain();
            assert!(
                undelivered.len() <= 1,
                "one call was queued, {undelivered:?} came back"
            );
            for effect in &effects {
                if let Effect::Send { text, .. } = effect {
                    let sent: serde_json::Value =
                        serde_json::from_str(text).expect("voltgate sends JSON");
                    assert!(sent.is_array(), "voltgate sends OCPP-J frames: {text}");
                }
            }
        }
    }
}
