//! REST API integration tests: the real server on 127.0.0.1 with a real HTTP
//! client. One binary for all of them keeps link time down.

#[path = "../ocpp/client.rs"]
#[allow(dead_code)]
mod client;
mod common;
mod durability;
mod errors;
mod import;
mod locations;
mod locations_v1;
mod nearby;
mod readiness;
mod registry;
mod stations;
mod tokens;
