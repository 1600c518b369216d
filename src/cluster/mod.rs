//! Several voltgate nodes on one ScyllaDB keyspace: each node's lease and
//! its stations' presence in the store, commands for a station routed to
//! the node that holds its socket over a token-protected internal API, and
//! a station that reconnects through another node taking over from the
//! first. No broker: the database the nodes already share, and direct
//! node-to-node calls.

pub mod lease;
pub mod link;
pub mod server;
pub mod settings;

pub use link::ClusterLink;
pub use settings::{ClusterSettings, NodeSettings};
