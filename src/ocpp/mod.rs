//! The OCPP protocol, free of I/O: schemas today; frames, messages and
//! CALLERROR codes as the station engine lands.

pub mod schema;
pub mod setting_key;
