//! The registry of connected stations: which actor holds which station's
//! connection, and routing of REST commands to it.
//!
//! Stations are sharded by a hash of their id over several `Shard` actors,
//! which run on their own arbiter threads: connect/disconnect storms and
//! command fan-out spread over shards and cores instead of queueing on one
//! mailbox. Every mailbox on the way is bounded; a full one is reported as
//! [`RouteError::Busy`], never buffered without limit.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use actix::prelude::*;

use crate::metrics::BACKPRESSURE_REJECTIONS;
use crate::ocpp::Version;
use crate::station::actor::{GoingAway, Replaced, SendCommand};
pub use crate::station::directory::ConnectionId;
use crate::station::directory::{Busy, Directory, StationHandle};

/// Messages a shard may hold before senders are told it is busy.
const SHARD_MAILBOX_CAPACITY: usize = 4096;

/// Why a command could not be handed to a station's actor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// The station has no live connection on this node.
    #[error("the station is not connected")]
    NotConnected,
    /// A mailbox on the way is full.
    #[error("the station's command queue is full, retry later")]
    Busy,
}

/// The other nodes of a cluster, as the registry reaches them: presence
/// written as connections come and go, and commands for stations held
/// elsewhere handed to their node (`cluster::link`).
#[async_trait::async_trait]
pub trait Peers: Send + Sync {
    /// A connection registered on this node (its presence is written, and
    /// a node that held the station before is told to close its socket).
    fn connected(&self, station: &str, connection: ConnectionId);
    /// A connection of this node ended.
    fn disconnected(&self, station: &str, connection: ConnectionId);
    /// Hands a stored command to the live node that holds the station;
    /// `NotConnected` when none does.
    async fn forward(&self, station: &str, command: SendCommand) -> Result<(), RouteError>;
    /// The id of the live node holding the station, when another node does.
    async fn holder(&self, station: &str) -> Option<String>;
    /// This node's id.
    fn node_id(&self) -> &str;
}

/// A connection opened elsewhere at `connection` took the station over:
/// the local one closes if it is older.
#[derive(Message)]
#[rtype(result = "bool")]
struct TakenOver {
    id: String,
    connection: ConnectionId,
}

/// Registers a connection; an older one for the same station is told to close.
#[derive(Message)]
#[rtype(result = "()")]
struct Connect(StationHandle);

/// Unregisters a connection (ignored when a newer one replaced it).
#[derive(Message)]
#[rtype(result = "()")]
struct Disconnect {
    id: String,
    connection: ConnectionId,
}

/// Hands a command to a station's actor.
#[derive(Message)]
#[rtype(result = "Result<(), RouteError>")]
struct RouteCommand {
    id: String,
    command: SendCommand,
}

/// Is this station connected?
#[derive(Message)]
#[rtype(result = "bool")]
struct IsConnected(String);

/// Ids of the stations connected through this shard, with their versions.
#[derive(Message)]
#[rtype(result = "Vec<(String, Version)>")]
struct ListConnected;

/// The versions of those of these stations that are connected.
#[derive(Message)]
#[rtype(result = "Vec<(String, Version)>")]
struct VersionsOf(Vec<String>);

/// Tells every station of the shard that the node is going away; answers
/// how many were told.
#[derive(Message)]
#[rtype(result = "usize")]
struct CloseAll;

/// One shard of the registry.
#[derive(Default)]
struct Shard {
    stations: HashMap<String, StationHandle>,
    /// Told to close everyone (the node is stopping): a connection that
    /// registers after that is told to go at once. It was admitted before
    /// the listeners stopped taking stations, and would otherwise hold the
    /// graceful stop for its whole drain time.
    closing: bool,
}

impl Actor for Shard {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(SHARD_MAILBOX_CAPACITY);
    }
}

impl Handler<Connect> for Shard {
    type Result = ();

    fn handle(&mut self, Connect(handle): Connect, _: &mut Self::Context) {
        if self.closing {
            handle.going_away.do_send(GoingAway);
        }
        let connection = handle.connection;
        if let Some(old) = self.stations.insert(handle.id.clone(), handle) {
            if old.connection != connection {
                // One message to one actor: the replaced connection must hear it.
                old.replaced.do_send(Replaced);
            }
        }
    }
}

impl Handler<Disconnect> for Shard {
    type Result = ();

    fn handle(&mut self, msg: Disconnect, _: &mut Self::Context) {
        if self
            .stations
            .get(&msg.id)
            .is_some_and(|entry| entry.connection == msg.connection)
        {
            self.stations.remove(&msg.id);
        }
    }
}

impl Shard {
    fn live(&mut self, id: &str) -> Option<&StationHandle> {
        // A connection whose Disconnect was lost (full mailbox) is dropped here.
        if self
            .stations
            .get(id)
            .is_some_and(|entry| !entry.connected())
        {
            self.stations.remove(id);
        }
        self.stations.get(id)
    }
}

/// Puts `message` in the station's mailbox without waiting: a full mailbox
/// is `Busy` (counted), a stopped actor `NotConnected`.
fn hand_over<M>(recipient: &Recipient<M>, message: M) -> Result<(), RouteError>
where
    M: Message<Result = ()> + Send + 'static,
{
    recipient.try_send(message).map_err(|e| match e {
        SendError::Full(_) => {
            metrics::counter!(BACKPRESSURE_REJECTIONS, "stage" => "station_mailbox").increment(1);
            RouteError::Busy
        }
        SendError::Closed(_) => RouteError::NotConnected,
    })
}

impl Handler<TakenOver> for Shard {
    type Result = bool;

    fn handle(&mut self, msg: TakenOver, _: &mut Self::Context) -> bool {
        let older = self
            .stations
            .get(&msg.id)
            .is_some_and(|entry| entry.connection < msg.connection);
        if older {
            if let Some(old) = self.stations.remove(&msg.id) {
                old.replaced.do_send(Replaced);
            }
        }
        older
    }
}

impl Handler<RouteCommand> for Shard {
    type Result = Result<(), RouteError>;

    fn handle(&mut self, msg: RouteCommand, _: &mut Self::Context) -> Self::Result {
        let entry = self.live(&msg.id).ok_or(RouteError::NotConnected)?;
        hand_over(&entry.command, msg.command)
    }
}

impl Handler<IsConnected> for Shard {
    type Result = bool;

    fn handle(&mut self, msg: IsConnected, _: &mut Self::Context) -> bool {
        self.live(&msg.0).is_some()
    }
}

impl Handler<CloseAll> for Shard {
    type Result = usize;

    fn handle(&mut self, _: CloseAll, _: &mut Self::Context) -> usize {
        self.closing = true;
        let mut told = 0;
        for entry in self.stations.values() {
            // `do_send` ignores a full mailbox: the close must get through.
            entry.going_away.do_send(GoingAway);
            told += 1;
        }
        told
    }
}

impl Handler<ListConnected> for Shard {
    type Result = Vec<(String, Version)>;

    fn handle(&mut self, _: ListConnected, _: &mut Self::Context) -> Self::Result {
        self.stations.retain(|_, entry| entry.connected());
        self.stations
            .iter()
            .map(|(id, entry)| (id.clone(), entry.version))
            .collect()
    }
}

impl Handler<VersionsOf> for Shard {
    type Result = Vec<(String, Version)>;

    fn handle(&mut self, msg: VersionsOf, _: &mut Self::Context) -> Self::Result {
        msg.0
            .into_iter()
            .filter_map(|id| {
                let version = self.live(&id)?.version;
                Some((id, version))
            })
            .collect()
    }
}

/// The sharded registry; cheap to clone.
#[derive(Clone)]
pub struct Registry {
    shards: Vec<Addr<Shard>>,
    /// The cluster's other nodes, when this node is one of several.
    peers: Option<std::sync::Arc<dyn Peers>>,
}

/// The arbiter threads the shards run on; stop them when the app stops.
pub struct ShardThreads(Vec<Arbiter>);

impl ShardThreads {
    /// Stops the threads.
    pub fn stop(self) {
        for arbiter in self.0 {
            arbiter.stop();
        }
    }
}

impl Registry {
    /// Starts `shards` shards on `threads` arbiter threads.
    pub fn start(shards: usize, threads: usize) -> (Registry, ShardThreads) {
        let threads: Vec<Arbiter> = (0..threads.max(1)).map(|_| Arbiter::new()).collect();
        let shards = (0..shards.max(1))
            .map(|i| {
                Shard::start_in_arbiter(&threads[i % threads.len()].handle(), |_| Shard::default())
            })
            .collect();
        (
            Registry {
                shards,
                peers: None,
            },
            ShardThreads(threads),
        )
    }

    /// This registry reaching stations on the cluster's other nodes too.
    pub fn with_peers(mut self, peers: std::sync::Arc<dyn Peers>) -> Registry {
        self.peers = Some(peers);
        self
    }

    /// This registry without the other nodes: what another node's forward
    /// is served with, so a command is never forwarded twice.
    pub fn local_only(&self) -> Registry {
        Registry {
            shards: self.shards.clone(),
            peers: None,
        }
    }

    /// Closes the local connection of `id` when it is older than a
    /// `connection` opened on another node; true when one was closed.
    pub async fn taken_over(&self, id: &str, connection: ConnectionId) -> bool {
        let msg = TakenOver {
            id: id.to_owned(),
            connection,
        };
        self.shard(id).send(msg).await.unwrap_or(false)
    }

    fn shard_index(&self, id: &str) -> usize {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        id.hash(&mut hasher);
        (hasher.finish() % self.shards.len() as u64) as usize
    }

    fn shard(&self, id: &str) -> &Addr<Shard> {
        &self.shards[self.shard_index(id)]
    }

    /// Registers a connection, waiting for room in the shard's mailbox.
    pub async fn connect(&self, handle: StationHandle) -> Result<(), RouteError> {
        let (id, connection) = (handle.id.clone(), handle.connection);
        self.shard(&handle.id)
            .send(Connect(handle))
            .await
            .map_err(|_| RouteError::Busy)?;
        if let Some(peers) = &self.peers {
            peers.connected(&id, connection);
        }
        Ok(())
    }

    /// Unregisters a connection without waiting (from an actor's `stopped`).
    pub fn disconnect(&self, id: &str, connection: ConnectionId) {
        crate::heap::connection_closed();
        let msg = Disconnect {
            id: id.to_owned(),
            connection,
        };
        if self.shard(id).try_send(msg).is_err() {
            // The shard drops dead addresses on its own when next asked.
            metrics::counter!(BACKPRESSURE_REJECTIONS, "stage" => "registry_disconnect")
                .increment(1);
        }
        if let Some(peers) = &self.peers {
            peers.disconnected(id, connection);
        }
    }

    /// Hands a stored command to the station's actor.
    pub async fn send_command(&self, id: &str, command: SendCommand) -> Result<(), RouteError> {
        // `send` waits while the shard's bounded mailbox is full (it drains
        // fast); the station's own mailbox is tried without waiting.
        let Some(peers) = &self.peers else {
            return self.route_here(id, command).await.map_err(|(e, _)| e);
        };
        match self.route_here(id, command).await {
            Err((RouteError::NotConnected, Some(command))) => peers.forward(id, command).await,
            other => other.map_err(|(e, _)| e),
        }
    }

    /// Hands a command to a local connection; a command no connection here
    /// took comes back with `NotConnected`, to go elsewhere.
    async fn route_here(
        &self,
        id: &str,
        command: SendCommand,
    ) -> Result<(), (RouteError, Option<SendCommand>)> {
        if self.peers.is_some() && !self.is_connected_here(id).await {
            return Err((RouteError::NotConnected, Some(command)));
        }
        let route = RouteCommand {
            id: id.to_owned(),
            command,
        };
        match self.shard(id).send(route).await {
            Ok(result) => result.map_err(|e| (e, None)),
            Err(_) => Err((RouteError::Busy, None)),
        }
    }

    /// Whether the station has a live connection on this node or, in a
    /// cluster, on another live node.
    pub async fn is_connected(&self, id: &str) -> bool {
        if self.is_connected_here(id).await {
            return true;
        }
        match &self.peers {
            Some(peers) => peers.holder(id).await.is_some(),
            None => false,
        }
    }

    /// Whether the station is connected, and in a cluster the id of the
    /// node that holds it.
    pub async fn holder(&self, id: &str) -> (bool, Option<String>) {
        let here = self.is_connected_here(id).await;
        match &self.peers {
            None => (here, None),
            Some(peers) if here => (true, Some(peers.node_id().to_owned())),
            Some(peers) => match peers.holder(id).await {
                Some(node) => (true, Some(node)),
                None => (false, None),
            },
        }
    }

    /// Whether this node is one of a cluster's.
    pub fn in_cluster(&self) -> bool {
        self.peers.is_some()
    }

    /// Whether this node holds a live connection of the station.
    pub async fn is_connected_here(&self, id: &str) -> bool {
        self.shard(id)
            .send(IsConnected(id.to_owned()))
            .await
            .unwrap_or(false)
    }

    /// Closes every connected station's socket (1012, reconnect); answers
    /// how many were told.
    pub async fn close_all(&self) -> usize {
        let mut told = 0;
        for shard in &self.shards {
            told += shard.send(CloseAll).await.unwrap_or(0);
        }
        told
    }

    /// Ids of all connected stations, sorted.
    pub async fn connected(&self) -> Vec<String> {
        self.connected_versions()
            .await
            .into_iter()
            .map(|(id, _)| id)
            .collect()
    }

    /// All connected stations with the version each speaks, sorted by id.
    pub async fn connected_versions(&self) -> Vec<(String, Version)> {
        let mut stations = Vec::new();
        for shard in &self.shards {
            stations.extend(shard.send(ListConnected).await.unwrap_or_default());
        }
        stations.sort_by(|a, b| a.0.cmp(&b.0));
        stations
    }

    /// The versions of those of `ids` that are connected (one message per shard).
    pub async fn versions_of(&self, ids: &[String]) -> HashMap<String, Version> {
        let mut by_shard: Vec<Vec<String>> = vec![Vec::new(); self.shards.len()];
        for id in ids {
            by_shard[self.shard_index(id)].push(id.clone());
        }
        let mut versions = HashMap::with_capacity(ids.len());
        for (shard, ids) in self.shards.iter().zip(by_shard) {
            if !ids.is_empty() {
                versions.extend(shard.send(VersionsOf(ids)).await.unwrap_or_default());
            }
        }
        versions
    }
}

impl Directory for Registry {
    fn connect(
        &self,
        handle: StationHandle,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), Busy>>>> {
        let registry = self.clone();
        Box::pin(async move { Registry::connect(&registry, handle).await.map_err(|_| Busy) })
    }

    fn disconnect(&self, id: &str, connection: ConnectionId) {
        Registry::disconnect(self, id, connection);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    /// A connection that counts the orders to go it gets.
    struct Probe(Arc<AtomicUsize>);

    impl Actor for Probe {
        type Context = Context<Self>;
    }

    impl Handler<SendCommand> for Probe {
        type Result = ();
        fn handle(&mut self, _: SendCommand, _: &mut Self::Context) {}
    }

    impl Handler<Replaced> for Probe {
        type Result = ();
        fn handle(&mut self, _: Replaced, _: &mut Self::Context) {}
    }

    impl Handler<GoingAway> for Probe {
        type Result = ();
        fn handle(&mut self, _: GoingAway, _: &mut Self::Context) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn handle(id: &str, told: &Arc<AtomicUsize>) -> StationHandle {
        let probe = Probe(told.clone()).start();
        StationHandle {
            id: id.to_owned(),
            connection: 1,
            version: Version::V16,
            command: probe.clone().recipient(),
            replaced: probe.clone().recipient(),
            going_away: probe.recipient(),
        }
    }

    async fn until_told(told: &AtomicUsize, times: usize) -> usize {
        for _ in 0..200 {
            if told.load(Ordering::SeqCst) >= times {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        told.load(Ordering::SeqCst)
    }

    #[actix_rt::test]
    async fn a_connection_registered_after_the_close_is_told_to_go() {
        let (registry, threads) = Registry::start(4, 1);
        let (before, after) = (Arc::default(), Arc::default());
        registry.connect(handle("CS1", &before)).await.unwrap();
        assert_eq!(registry.close_all().await, 1);
        assert_eq!(until_told(&before, 1).await, 1);
        // Admitted before the listeners stopped, registered after the close.
        registry.connect(handle("CS2", &after)).await.unwrap();
        assert_eq!(until_told(&after, 1).await, 1, "told to go as it registers");
        threads.stop();
    }
}
