//! CALLERROR codes: one table for both versions, since 1.6 and 2.0.1 name
//! some of them differently (1.6 `FormationViolation` and the misspelt
//! `OccurenceConstraintViolation`; 2.0.1 `FormatViolation`, ...).

use super::Version;

/// Why a CALL could not be answered with a CALLRESULT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The message is not a valid OCPP-J frame or payload structure.
    Format,
    /// Any other error.
    Generic,
    /// The receiver failed internally while handling a valid message.
    Internal,
    /// The frame's message type number is unknown.
    MessageTypeNotSupported,
    /// The action is not known.
    NotImplemented,
    /// The action is known but not supported.
    NotSupported,
    /// A required field is missing or a field occurs too often.
    OccurrenceConstraintViolation,
    /// A field's value breaks a constraint (enum, length, range).
    PropertyConstraintViolation,
    /// The payload is incomplete or out of protocol order.
    Protocol,
    /// The RPC framework failed (2.0.1).
    RpcFramework,
    /// The sender is not allowed to do this (e.g. before BootNotification is accepted).
    Security,
    /// A field has the wrong JSON type.
    TypeConstraintViolation,
}

impl ErrorCode {
    /// The code's wire name in `version`.
    pub fn name(self, version: Version) -> &'static str {
        use ErrorCode::*;
        match (self, version) {
            (Format, Version::V16) => "FormationViolation",
            (Format, Version::V201) => "FormatViolation",
            (Generic, _) => "GenericError",
            (Internal, _) => "InternalError",
            // 1.6 has no MessageTypeNotSupported/RpcFrameworkError: the frame is
            // not a valid OCPP-J structure, so FormationViolation.
            (MessageTypeNotSupported, Version::V16) => "FormationViolation",
            (MessageTypeNotSupported, Version::V201) => "MessageTypeNotSupported",
            (NotImplemented, _) => "NotImplemented",
            (NotSupported, _) => "NotSupported",
            (OccurrenceConstraintViolation, Version::V16) => "OccurenceConstraintViolation",
            (OccurrenceConstraintViolation, Version::V201) => "OccurrenceConstraintViolation",
            (PropertyConstraintViolation, _) => "PropertyConstraintViolation",
            (Protocol, _) => "ProtocolError",
            (RpcFramework, Version::V16) => "GenericError",
            (RpcFramework, Version::V201) => "RpcFrameworkError",
            (Security, _) => "SecurityError",
            (TypeConstraintViolation, _) => "TypeConstraintViolation",
        }
    }

    /// Every code.
    pub const ALL: [ErrorCode; 12] = [
        ErrorCode::Format,
        ErrorCode::Generic,
        ErrorCode::Internal,
        ErrorCode::MessageTypeNotSupported,
        ErrorCode::NotImplemented,
        ErrorCode::NotSupported,
        ErrorCode::OccurrenceConstraintViolation,
        ErrorCode::PropertyConstraintViolation,
        ErrorCode::Protocol,
        ErrorCode::RpcFramework,
        ErrorCode::Security,
        ErrorCode::TypeConstraintViolation,
    ];

    /// The code a wire name stands for, in either version's spelling. Where
    /// 1.6 sends two codes under one name (GenericError, FormationViolation),
    /// the more general code comes first in [`ErrorCode::ALL`] and wins.
    pub fn from_name(name: &str) -> Option<ErrorCode> {
        ErrorCode::ALL
            .into_iter()
            .find(|code| code.name(Version::V16) == name || code.name(Version::V201) == name)
    }

    /// A closed-set label for metrics (version independent).
    pub fn label(self) -> &'static str {
        self.name(Version::V201)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ErrorCode::*;

    #[test]
    fn names_per_version() {
        let expect = [
            (Format, "FormationViolation", "FormatViolation"),
            (Generic, "GenericError", "GenericError"),
            (Internal, "InternalError", "InternalError"),
            (
                MessageTypeNotSupported,
                "FormationViolation",
                "MessageTypeNotSupported",
            ),
            (NotImplemented, "NotImplemented", "NotImplemented"),
            (NotSupported, "NotSupported", "NotSupported"),
            (
                OccurrenceConstraintViolation,
                "OccurenceConstraintViolation",
                "OccurrenceConstraintViolation",
            ),
            (
                PropertyConstraintViolation,
                "PropertyConstraintViolation",
                "PropertyConstraintViolation",
            ),
            (Protocol, "ProtocolError", "ProtocolError"),
            (RpcFramework, "GenericError", "RpcFrameworkError"),
            (Security, "SecurityError", "SecurityError"),
            (
                TypeConstraintViolation,
                "TypeConstraintViolation",
                "TypeConstraintViolation",
            ),
        ];
        for (code, v16, v201) in expect {
            assert_eq!(code.name(Version::V16), v16, "{code:?}");
            assert_eq!(code.name(Version::V201), v201, "{code:?}");
        }
        assert_eq!(expect.len(), ErrorCode::ALL.len());
    }

    #[test]
    fn wire_names_read_back_in_both_spellings() {
        assert_eq!(
            ErrorCode::from_name("OccurenceConstraintViolation"),
            Some(OccurrenceConstraintViolation)
        );
        assert_eq!(
            ErrorCode::from_name("OccurrenceConstraintViolation"),
            Some(OccurrenceConstraintViolation)
        );
        assert_eq!(ErrorCode::from_name("FormationViolation"), Some(Format));
        assert_eq!(ErrorCode::from_name("FormatViolation"), Some(Format));
        assert_eq!(ErrorCode::from_name("GenericError"), Some(Generic));
        assert_eq!(
            ErrorCode::from_name("RpcFrameworkError"),
            Some(RpcFramework)
        );
        assert_eq!(ErrorCode::from_name("NoSuchError"), None);
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_name(code.name(Version::V201)), Some(code));
        }
    }
}
