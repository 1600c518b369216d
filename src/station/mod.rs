//! Connected charge stations: the pure session state machine, the handlers
//! for what stations send, the commands sent to them, and the actor that
//! ties a WebSocket to all of it.

pub mod acceptor;
pub mod actor;
pub mod courier;
pub mod directory;
pub mod endpoint;
pub mod engine;
pub mod evse_status;
pub mod fragments;
pub mod gate;
pub mod handlers;
pub mod in_flight;
pub mod listener;
pub mod messages;
pub mod no_protocol;
pub mod operations;
pub mod outbound;
pub mod outbox;
pub mod remote_auth;
pub mod reported;
pub mod session;
pub mod socket;
pub mod traffic;
pub mod transaction_feed;
pub mod wire;
