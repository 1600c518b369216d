//! The OCPI 2.2.1 CPO interface for roaming partners: its listener and
//! transport, the credentials handshake in both directions, and the
//! registrations behind `/api/v0/register`.

pub mod authorize;
pub mod client;
pub mod commands;
pub mod credentials;
pub mod locations;
pub mod outbound;
pub mod pusher;
pub mod registrar;
pub mod reservations;
pub mod server;
pub mod sessions;
pub mod settings;
pub mod tokens;
pub mod transport;

pub use registrar::Registrar;
pub use settings::OcpiSettings;
