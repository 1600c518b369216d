//! OCPP-J frames: `[2, id, action, payload]` (CALL), `[3, id, payload]`
//! (CALLRESULT), `[4, id, code, description, details]` (CALLERROR).
//!
//! Parsing checks the frame's shape only; payloads are checked against the
//! schemas elsewhere. A broken frame yields a [`FrameError`] carrying what
//! could still be read (the message id, whether it was a CALL), so the
//! caller can answer with a CALLERROR as OCPP-J asks.

use serde_json::Value;

use super::error::ErrorCode;

/// Longest message id OCPP-J allows.
pub const MAX_MESSAGE_ID_CHARS: usize = 36;
/// The id OCPP-J prescribes for a CALLERROR when the message id cannot be read.
pub const UNKNOWN_MESSAGE_ID: &str = "-1";

/// The kind of an OCPP-J message, for metrics and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// `[2, ...]`.
    Call,
    /// `[3, ...]`.
    CallResult,
    /// `[4, ...]`.
    CallError,
    /// Not a readable OCPP-J frame.
    Invalid,
}

impl MessageKind {
    /// A closed-set label.
    pub fn label(self) -> &'static str {
        match self {
            MessageKind::Call => "CALL",
            MessageKind::CallResult => "CALLRESULT",
            MessageKind::CallError => "CALLERROR",
            MessageKind::Invalid => "invalid",
        }
    }
}

/// A parsed OCPP-J message.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// A request.
    Call {
        /// Message id, echoed by the answer.
        id: String,
        /// The action (e.g. "BootNotification").
        action: String,
        /// The request payload.
        payload: Value,
    },
    /// A successful answer.
    CallResult {
        /// The id of the CALL answered.
        id: String,
        /// The response payload.
        payload: Value,
    },
    /// A failed answer.
    CallError {
        /// The id of the CALL answered.
        id: String,
        /// The error code as sent.
        code: String,
        /// The description as sent.
        description: String,
    },
}

/// What kind of message a broken frame claimed to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claimed {
    /// A CALL (or something whose type could not be read): it deserves an answer.
    CallOrUnknown,
    /// A CALLRESULT or CALLERROR: OCPP-J answers these with nothing.
    Answer,
}

/// A frame that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameError {
    /// The message id, when it could be read.
    pub id: Option<String>,
    /// What the frame claimed to be.
    pub claimed: Claimed,
    /// The CALLERROR code to answer with.
    pub code: ErrorCode,
    /// What is wrong, for the CALLERROR description.
    pub reason: String,
}

impl FrameError {
    fn new(
        id: Option<String>,
        claimed: Claimed,
        code: ErrorCode,
        reason: impl Into<String>,
    ) -> Self {
        FrameError {
            id,
            claimed,
            code,
            reason: reason.into(),
        }
    }
}

/// Parses one OCPP-J message.
pub fn parse(text: &str) -> Result<Frame, FrameError> {
    let value: Value = serde_json::from_str(text).map_err(|e| {
        FrameError::new(
            sniff_id(text),
            Claimed::CallOrUnknown,
            ErrorCode::Format,
            format!("not JSON: {e}"),
        )
    })?;
    let Value::Array(mut items) = value else {
        return Err(FrameError::new(
            None,
            Claimed::CallOrUnknown,
            ErrorCode::Format,
            "not a JSON array",
        ));
    };
    let type_id = items.first().and_then(Value::as_u64);
    let claimed = match type_id {
        Some(3 | 4) => Claimed::Answer,
        _ => Claimed::CallOrUnknown,
    };
    let id = match items.get(1) {
        Some(Value::String(id)) if !id.is_empty() && id.chars().count() <= MAX_MESSAGE_ID_CHARS => {
            Some(id.clone())
        }
        _ => None,
    };
    let Some(type_id) = type_id else {
        return Err(FrameError::new(
            id,
            claimed,
            ErrorCode::Format,
            "first element is not a message type number",
        ));
    };
    let Some(id) = id else {
        return Err(FrameError::new(
            None,
            claimed,
            ErrorCode::Format,
            format!("second element is not a message id (a string of 1 to {MAX_MESSAGE_ID_CHARS} characters)"),
        ));
    };
    let shape_error = |expected: &str| {
        FrameError::new(
            Some(id.clone()),
            claimed,
            ErrorCode::Format,
            format!("expected {expected}"),
        )
    };
    match type_id {
        2 => {
            if items.len() != 4 {
                return Err(shape_error("[2, id, action, payload]"));
            }
            let payload = items.pop().unwrap_or(Value::Null);
            let Some(Value::String(action)) = items.pop() else {
                return Err(shape_error("a string action in [2, id, action, payload]"));
            };
            Ok(Frame::Call {
                id,
                action,
                payload,
            })
        }
        3 => {
            if items.len() != 3 {
                return Err(shape_error("[3, id, payload]"));
            }
            let payload = items.pop().unwrap_or(Value::Null);
            Ok(Frame::CallResult { id, payload })
        }
        4 => {
            if items.len() != 5 {
                return Err(shape_error("[4, id, code, description, details]"));
            }
            let (Some(code), Some(description)) = (items[2].as_str(), items[3].as_str()) else {
                return Err(shape_error("string code and description in a CALLERROR"));
            };
            Ok(Frame::CallError {
                id,
                code: code.to_owned(),
                description: description.to_owned(),
            })
        }
        other => Err(FrameError::new(
            Some(id),
            Claimed::CallOrUnknown,
            ErrorCode::MessageTypeNotSupported,
            format!("message type {other} is not 2, 3 or 4"),
        )),
    }
}

/// Reads the message id of a CALL-looking text without parsing it whole
/// (for texts that are not JSON, or too large to parse): `[2, "id", ...`.
pub fn sniff_id(text: &str) -> Option<String> {
    let rest = text.trim_start().strip_prefix('[')?.trim_start();
    let rest = rest
        .strip_prefix('2')?
        .trim_start()
        .strip_prefix(',')?
        .trim_start();
    let rest = rest.strip_prefix('"')?;
    let end = rest.find('"')?;
    let id = &rest[..end];
    let plain = !id.is_empty() && id.len() <= MAX_MESSAGE_ID_CHARS && !id.contains('\\');
    plain.then(|| id.to_owned())
}

/// `[2, id, action, payload]`.
pub fn call(id: &str, action: &str, payload: &Value) -> String {
    serde_json::to_string(&(2, id, action, payload)).unwrap_or_default()
}

/// `[3, id, payload]`.
pub fn call_result(id: &str, payload: &Value) -> String {
    serde_json::to_string(&(3, id, payload)).unwrap_or_default()
}

/// `[4, id, code, description, {}]`.
pub fn call_error(id: &str, code: &str, description: &str) -> String {
    serde_json::to_string(&(4, id, code, description, serde_json::Map::new())).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(text: &str) -> FrameError {
        parse(text).expect_err(text)
    }

    #[test]
    fn parses_the_three_kinds() {
        assert_eq!(
            parse(r#"[2,"1","Heartbeat",{}]"#),
            Ok(Frame::Call {
                id: "1".into(),
                action: "Heartbeat".into(),
                payload: json!({})
            })
        );
        assert_eq!(
            parse(r#"[3,"x",{"a":1}]"#),
            Ok(Frame::CallResult {
                id: "x".into(),
                payload: json!({"a": 1})
            })
        );
        assert_eq!(
            parse(r#"[4,"x","NotSupported","nope",{}]"#),
            Ok(Frame::CallError {
                id: "x".into(),
                code: "NotSupported".into(),
                description: "nope".into()
            })
        );
    }

    #[test]
    fn serializes_what_it_parses() {
        let payload = json!({"status": "Accepted"});
        assert_eq!(
            parse(&call("7", "Reset", &payload)),
            Ok(Frame::Call {
                id: "7".into(),
                action: "Reset".into(),
                payload: payload.clone()
            })
        );
        assert_eq!(
            parse(&call_result("7", &payload)),
            Ok(Frame::CallResult {
                id: "7".into(),
                payload
            })
        );
        assert_eq!(
            call_error("7", "NotImplemented", "say \"what\""),
            r#"[4,"7","NotImplemented","say \"what\"",{}]"#
        );
    }

    #[test]
    fn broken_frames_keep_what_can_be_read() {
        let e = err("hello");
        assert_eq!(
            (e.id, e.code, e.claimed),
            (None, ErrorCode::Format, Claimed::CallOrUnknown)
        );
        let e = err(r#"[2, "abc", "Heartbeat", {"#);
        assert_eq!(
            e.id.as_deref(),
            Some("abc"),
            "id sniffed from a truncated CALL"
        );
        assert_eq!(err(r#"{"a":1}"#).code, ErrorCode::Format);
        assert_eq!(err("[]").code, ErrorCode::Format);
        let e = err(r#"[5,"id",{}]"#);
        assert_eq!(
            (e.id.as_deref(), e.code),
            (Some("id"), ErrorCode::MessageTypeNotSupported)
        );
        let e = err(r#"[2,"id","Heartbeat"]"#);
        assert_eq!((e.id.as_deref(), e.code), (Some("id"), ErrorCode::Format));
        let e = err(r#"[2,"id",7,{}]"#);
        assert_eq!(e.id.as_deref(), Some("id"));
        assert_eq!(err(r#"[2,17,"Heartbeat",{}]"#).id, None);
        let long = format!(r#"[2,"{}","Heartbeat",{{}}]"#, "x".repeat(37));
        assert_eq!(err(&long).id, None);
        assert_eq!(err(r#"["2","id","Heartbeat",{}]"#).code, ErrorCode::Format);
    }

    #[test]
    fn broken_answers_are_marked_as_answers() {
        assert_eq!(err(r#"[3,"id"]"#).claimed, Claimed::Answer);
        assert_eq!(err(r#"[4,"id","x"]"#).claimed, Claimed::Answer);
    }

    #[test]
    fn sniffing_ids() {
        assert_eq!(sniff_id(r#" [ 2 , "m-1" , "X""#).as_deref(), Some("m-1"));
        assert_eq!(sniff_id(r#"[3,"m-1",{}"#), None);
        assert_eq!(sniff_id(r#"[2,"a\"b","X"]"#), None);
    }
}
