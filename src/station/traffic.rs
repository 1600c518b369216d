//! What the metrics record of each session effect: messages in and out,
//! CSMS CALL round trips and timeouts, CALLERRORs both ways, ignored
//! messages. Kept apart from the actor so the benchmarks measure the same
//! recording the server does.

use super::session::{CallOutcome, Effect};
use crate::metrics::{self, Flow};
use crate::ocpp::actions;
use crate::ocpp::error::ErrorCode;
use crate::ocpp::Version;

/// Records what `effect` says happened on a connection speaking `version`.
pub fn record<T>(version: Version, effect: &Effect<T>) {
    match effect {
        Effect::Send { kind, action, .. } => {
            metrics::ocpp_message(Flow::Sent, version, *kind, action)
        }
        Effect::Received { kind, action } => {
            metrics::ocpp_message(Flow::Received, version, *kind, action)
        }
        Effect::Answered {
            action,
            outcome,
            round_trip,
            ..
        } => {
            metrics::call_answered(version, action, *round_trip);
            if let CallOutcome::Error { code, .. } = outcome {
                // The code is the station's string: label it from the closed set.
                let label = ErrorCode::from_name(code).map_or(actions::OTHER, ErrorCode::label);
                metrics::call_error(Flow::Received, label);
            }
        }
        Effect::Refused { code } => metrics::call_error(Flow::Sent, code.label()),
        Effect::Ignored { reason } => {
            ::metrics::counter!(metrics::MESSAGES_IGNORED, "reason" => *reason).increment(1)
        }
        Effect::Handle { .. } => {}
    }
}
