//! Locations with their EVSEs and connectors: the rules a location keeps,
//! the service every HTTP surface changes them through (conditional,
//! stamped, never losing a concurrent change), the live EVSE status from the
//! stations' reports, and the `/api/v1` management API in OCPI conventions.

pub mod api;
pub mod feed;
pub mod import;
pub mod live;
pub mod paging;
pub mod payment_types;
pub mod rules;
pub mod search;
pub mod service;
pub mod stations;

pub use payment_types::PaymentTypes;
pub use service::{Changed, Failure, Locations};
