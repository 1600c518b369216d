//! The registry of connected stations: which actor holds which station's
//! connection, and routing of REST commands to it.
//!
//! Stations are sharded by a hash of their id over several maps, each behind
//! its own lock, and every operation runs on the calling thread: a connect,
//! a disconnect or a command's hand-over holds one shard's lock for a map
//! lookup and a non-blocking send into an actor's mailbox. (The shards were
//! actors on arbiter threads before; a connect then cost a wake-up of the
//! shard's thread and one back, the largest part of a boot's thread
//! hand-offs: benches/README, "The registry without its threads".) The
//! stations' own mailboxes stay bounded: a full one is reported as
//! [`RouteError::Busy`], never buffered without limit.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard};

use actix::prelude::*;

use crate::metrics::BACKPRESSURE_REJECTIONS;
use crate::ocpp::Version;
use crate::station::actor::{GoingAway, Replaced, SendCommand};
pub use crate::station::directory::ConnectionId;
use crate::station::directory::{Directory, StationHandle};

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
    /// [`Peers::holder`] of each of `stations` at once: those held by
    /// another live node, with its id.
    async fn holders(&self, stations: &[String]) -> HashMap<String, String> {
        let mut held = HashMap::new();
        for station in stations {
            if let Some(node) = self.holder(station).await {
                held.insert(station.clone(), node);
            }
        }
        held
    }
    /// This node's id.
    fn node_id(&self) -> &str;
}

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

impl Shard {
    /// The live connection of `id`. One whose actor has stopped without
    /// unregistering yet is dropped here.
    fn live(&mut self, id: &str) -> Option<&StationHandle> {
        if self
            .stations
            .get(id)
            .is_some_and(|entry| !entry.connected())
        {
            self.stations.remove(id);
        }
        self.stations.get(id)
    }

    fn connect(&mut self, handle: StationHandle) {
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

    fn disconnect(&mut self, id: &str, connection: ConnectionId) {
        if self
            .stations
            .get(id)
            .is_some_and(|entry| entry.connection == connection)
        {
            self.stations.remove(id);
        }
    }

    /// Closes the connection of `id` when it is older than `connection`.
    fn taken_over(&mut self, id: &str, connection: ConnectionId) -> bool {
        let older = self
            .stations
            .get(id)
            .is_some_and(|entry| entry.connection < connection);
        if older {
            if let Some(old) = self.stations.remove(id) {
                old.replaced.do_send(Replaced);
            }
        }
        older
    }

    fn close_all(&mut self) -> usize {
        self.closing = true;
        for entry in self.stations.values() {
            // `do_send` ignores a full mailbox: the close must get through.
            entry.going_away.do_send(GoingAway);
        }
        self.stations.len()
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

/// What became of a command routed to this node's connections.
enum Local {
    /// A connection here was tried: handed over, or its mailbox was full.
    Handed(Result<(), RouteError>),
    /// No connection here: the command, to go to another node.
    NotHere(Box<SendCommand>),
}

/// The sharded registry; cheap to clone.
#[derive(Clone)]
pub struct Registry {
    shards: Arc<[Mutex<Shard>]>,
    /// The cluster's other nodes, when this node is one of several.
    peers: Option<Arc<dyn Peers>>,
}

impl Registry {
    /// A registry of `shards` shards.
    pub fn new(shards: usize) -> Registry {
        Registry {
            shards: (0..shards.max(1)).map(|_| Mutex::default()).collect(),
            peers: None,
        }
    }

    /// This registry reaching stations on the cluster's other nodes too.
    pub fn with_peers(mut self, peers: Arc<dyn Peers>) -> Registry {
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

    fn shard_index(&self, id: &str) -> usize {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        id.hash(&mut hasher);
        (hasher.finish() % self.shards.len() as u64) as usize
    }

    /// The shard of `id`, locked. A lock poisoned by a panic elsewhere
    /// still guards a consistent map (no operation panics halfway).
    fn shard(&self, id: &str) -> MutexGuard<'_, Shard> {
        lock(&self.shards[self.shard_index(id)])
    }

    /// Closes the local connection of `id` when it is older than a
    /// `connection` opened on another node; true when one was closed.
    pub async fn taken_over(&self, id: &str, connection: ConnectionId) -> bool {
        self.shard(id).taken_over(id, connection)
    }

    /// Registers a connection; an older one of the same station is told to
    /// close.
    pub fn connect(&self, handle: StationHandle) {
        let (id, connection) = (handle.id.clone(), handle.connection);
        self.shard(&id).connect(handle);
        if let Some(peers) = &self.peers {
            peers.connected(&id, connection);
        }
    }

    /// Unregisters a connection (ignored when a newer one replaced it).
    pub fn disconnect(&self, id: &str, connection: ConnectionId) {
        crate::heap::connection_closed();
        self.shard(id).disconnect(id, connection);
        if let Some(peers) = &self.peers {
            peers.disconnected(id, connection);
        }
    }

    /// Hands a stored command to the station's actor.
    pub async fn send_command(&self, id: &str, command: SendCommand) -> Result<(), RouteError> {
        // The station's mailbox is tried without waiting.
        match (self.route_here(id, command), &self.peers) {
            (Local::Handed(result), _) => result,
            (Local::NotHere(command), Some(peers)) => peers.forward(id, *command).await,
            (Local::NotHere(_), None) => Err(RouteError::NotConnected),
        }
    }

    /// Hands a command to a local connection, or gives it back to go
    /// elsewhere when there is none.
    fn route_here(&self, id: &str, command: SendCommand) -> Local {
        match self.shard(id).live(id) {
            Some(entry) => Local::Handed(hand_over(&entry.command, command)),
            None => Local::NotHere(Box::new(command)),
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

    /// [`Registry::holder`] of each of `ids`, in their order; the stations
    /// not connected here are looked up on the other nodes all at once.
    pub async fn holders(&self, ids: &[String]) -> Vec<(bool, Option<String>)> {
        let here: Vec<bool> = ids.iter().map(|id| self.connected_here(id)).collect();
        let Some(peers) = &self.peers else {
            return here.into_iter().map(|here| (here, None)).collect();
        };
        let elsewhere: Vec<String> = (ids.iter().zip(&here))
            .filter(|(_, here)| !**here)
            .map(|(id, _)| id.clone())
            .collect();
        let mut held = peers.holders(&elsewhere).await;
        ids.iter()
            .zip(here)
            .map(|(id, here)| match here {
                true => (true, Some(peers.node_id().to_owned())),
                false => match held.remove(id) {
                    Some(node) => (true, Some(node)),
                    None => (false, None),
                },
            })
            .collect()
    }

    /// Whether this node is one of a cluster's.
    pub fn in_cluster(&self) -> bool {
        self.peers.is_some()
    }

    /// Whether this node holds a live connection of the station.
    pub async fn is_connected_here(&self, id: &str) -> bool {
        self.connected_here(id)
    }

    fn connected_here(&self, id: &str) -> bool {
        self.shard(id).live(id).is_some()
    }

    /// Closes every connected station's socket (1012, reconnect); answers
    /// how many were told.
    pub async fn close_all(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| lock(shard).close_all())
            .sum()
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
        for shard in self.shards.iter() {
            let mut shard = lock(shard);
            shard.stations.retain(|_, entry| entry.connected());
            stations.extend(
                shard
                    .stations
                    .iter()
                    .map(|(id, entry)| (id.clone(), entry.version)),
            );
        }
        stations.sort_by(|a, b| a.0.cmp(&b.0));
        stations
    }

    /// The versions of those of `ids` that are connected.
    pub async fn versions_of(&self, ids: &[String]) -> HashMap<String, Version> {
        ids.iter()
            .filter_map(|id| {
                let version = self.shard(id).live(id)?.version;
                Some((id.clone(), version))
            })
            .collect()
    }
}

fn lock(shard: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    shard
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Directory for Registry {
    fn connect(&self, handle: StationHandle) {
        Registry::connect(self, handle);
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
        let registry = Registry::new(4);
        let (before, after) = (Arc::default(), Arc::default());
        registry.connect(handle("CS1", &before));
        assert_eq!(registry.close_all().await, 1);
        assert_eq!(until_told(&before, 1).await, 1);
        // Admitted before the listeners stopped, registered after the close.
        registry.connect(handle("CS2", &after));
        assert_eq!(until_told(&after, 1).await, 1, "told to go as it registers");
    }

    /// Other nodes that answer only in bulk, and note what they were asked.
    struct Elsewhere {
        held: HashMap<String, String>,
        asked: std::sync::Mutex<Vec<Vec<String>>>,
    }

    #[async_trait::async_trait]
    impl Peers for Elsewhere {
        fn connected(&self, _: &str, _: ConnectionId) {}
        fn disconnected(&self, _: &str, _: ConnectionId) {}
        async fn forward(&self, _: &str, _: SendCommand) -> Result<(), RouteError> {
            Err(RouteError::NotConnected)
        }
        async fn holder(&self, station: &str) -> Option<String> {
            panic!("{station} asked for alone")
        }
        async fn holders(&self, stations: &[String]) -> HashMap<String, String> {
            self.asked.lock().unwrap().push(stations.to_vec());
            (stations.iter())
                .filter_map(|id| Some((id.clone(), self.held.get(id)?.clone())))
                .collect()
        }
        fn node_id(&self) -> &str {
            "node-a"
        }
    }

    #[actix_rt::test]
    async fn a_page_of_stations_is_looked_up_on_the_other_nodes_at_once() {
        let peers = Arc::new(Elsewhere {
            held: HashMap::from([("CS2".to_owned(), "node-b".to_owned())]),
            asked: Default::default(),
        });
        let registry = Registry::new(4).with_peers(peers.clone());
        registry.connect(handle("CS1", &Arc::default()));
        let ids = ["CS1", "CS2", "CS3"].map(String::from);
        assert_eq!(
            registry.holders(&ids).await,
            [
                (true, Some("node-a".to_owned())),
                (true, Some("node-b".to_owned())),
                (false, None)
            ]
        );
        assert_eq!(
            *peers.asked.lock().unwrap(),
            [["CS2", "CS3"].map(String::from)],
            "one question for all the stations not here"
        );
    }
}
