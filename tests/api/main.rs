//! REST API integration tests: the real server on 127.0.0.1 with a real HTTP
//! client. One binary for all of them keeps link time down.

mod common;
mod durability;
mod errors;
mod import;
mod locations;
mod locations_v1;
mod nearby;
mod registry;
mod stations;
mod tokens;
