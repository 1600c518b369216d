//! This node's side of the cluster: its presence rows as its connections
//! come and go, the takeover of a station another node still holds, and
//! commands for stations held elsewhere handed to their node's internal
//! API. Calls to other nodes run on the outbound thread, each bounded by a
//! timeout; a node that does not answer is tried once more. A station's
//! presence row is cleared only when nothing listens where its node was
//! (the node is gone: the station will connect somewhere again); a node
//! that is merely slow keeps its rows until its lease lapses.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use awc::http::StatusCode;
use serde_json::{json, Value};

use super::settings::NodeSettings;
use crate::ocpi::outbound::Outbound;
use crate::station::actor::SendCommand;
use crate::station::in_flight::Waiter;
use crate::store::{
    CommandError, CommandRecord, CommandStatus, DeliveryClass, NodeLease, Presence, Store,
};
use crate::supervisor::{ConnectionId, Peers, RouteError};

/// How long a forward or takeover call to another node may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the list of live nodes is reused.
const NODES_FRESH_FOR: Duration = Duration::from_secs(1);
/// Presence reads in flight at once for a bulk lookup (a fleet list page).
const PRESENCE_READS_AT_ONCE: usize = 64;
/// How often a forwarded command is looked up in the store while its
/// caller waits, in case the holding node's push of its answer is lost.
const WAIT_POLL: Duration = Duration::from_secs(1);
/// Longest a forwarded command is waited for.
const LONGEST_WAIT: Duration = Duration::from_secs(600);

/// The live nodes as last read, and when.
type NodesRead = Option<(Instant, Vec<NodeLease>)>;

/// The cluster as this node reaches it; cheap to clone.
#[derive(Clone)]
pub struct ClusterLink {
    node: Arc<NodeSettings>,
    store: Arc<dyn Store>,
    outbound: Outbound,
    nodes: Arc<Mutex<NodesRead>>,
    /// This node's REST callers waiting for commands forwarded to other
    /// nodes, by command id.
    waiting: Arc<Mutex<HashMap<String, Waiter>>>,
    /// The runtime the link was made on, which outlives the listeners'
    /// workers.
    background: tokio::runtime::Handle,
}

/// What a call to another node came to.
enum Answer {
    Json(Value),
    Refused(u16, String),
}

/// Why a call to another node got no answer.
#[derive(Debug)]
enum NoAnswer {
    /// Nothing listens there (the node is gone): its presence rows are stale.
    Gone(String),
    /// It did not answer in time, or the exchange broke: it may be alive
    /// and loaded, so its rows stand until its lease says otherwise.
    Silent(String),
}

impl std::fmt::Display for NoAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NoAnswer::Gone(why) | NoAnswer::Silent(why) => f.write_str(why),
        }
    }
}

/// What a failed connection to another node says about it. Refused means
/// nothing listens at its address: the node is gone. Anything else says
/// nothing of the other node: a timeout may be load, and this node out of
/// sockets (EMFILE under a flood of REST clients) is this node's own
/// trouble; clearing presence then hid healthy stations on the other node.
fn connect_failure(url: &str, e: &awc::error::ConnectError) -> NoAnswer {
    let why = format!("{url}: {e}");
    match e {
        awc::error::ConnectError::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            NoAnswer::Gone(why)
        }
        _ => NoAnswer::Silent(why),
    }
}

thread_local! {
    /// The outbound thread's client: its pool keeps connections to the
    /// other nodes open, so a forward costs no TCP handshake and no socket
    /// of its own.
    static CLIENT: awc::Client = awc::Client::builder()
        .timeout(CALL_TIMEOUT)
        .disable_redirects()
        .finish();
}

impl ClusterLink {
    /// The link of node `node`, sharing `store` (ScyllaDB) with the others.
    /// Must be called within a runtime (the one `start` runs on).
    pub fn new(node: NodeSettings, store: Arc<dyn Store>, outbound: Outbound) -> Self {
        ClusterLink {
            node: Arc::new(node),
            store,
            outbound,
            nodes: Arc::default(),
            waiting: Arc::default(),
            background: tokio::runtime::Handle::current(),
        }
    }

    /// This node's settings.
    pub fn node(&self) -> &NodeSettings {
        &self.node
    }

    /// The store the nodes share.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The live nodes (re-read at most every second).
    pub async fn live_nodes(&self) -> Vec<NodeLease> {
        if let Some((at, nodes)) = self.nodes.lock().ok().and_then(|n| n.clone()) {
            if at.elapsed() < NODES_FRESH_FOR {
                return nodes;
            }
        }
        let Some(cluster) = self.store.cluster() else {
            return Vec::new();
        };
        match cluster.live_nodes().await {
            Ok(nodes) => {
                crate::metrics::cluster_live_nodes(nodes.len());
                if let Ok(mut cached) = self.nodes.lock() {
                    *cached = Some((Instant::now(), nodes.clone()));
                }
                nodes
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the cluster's live nodes");
                Vec::new()
            }
        }
    }

    /// Where the station is held by another live node: the node and the
    /// presence row.
    async fn held_elsewhere(&self, station: &str) -> Option<(NodeLease, Presence)> {
        let presence = self.store.cluster()?.presence(station).await.ok()??;
        if presence.node_id == self.node.node_id {
            return None;
        }
        let node = self
            .live_nodes()
            .await
            .into_iter()
            .find(|n| n.node_id == presence.node_id)?;
        Some((node, presence))
    }

    /// POSTs `body` to another node's internal API at `path`.
    async fn post(&self, node: &NodeLease, path: &str, body: Value) -> Result<Answer, NoAnswer> {
        let url = format!("{}{path}", node.url.trim_end_matches('/'));
        let token = self.node.token.clone();
        let called = self.outbound.run(move || async move {
            let client = CLIENT.with(Clone::clone);
            let mut response = client
                .post(&url)
                .insert_header(("Authorization", format!("Bearer {token}")))
                .send_json(&body)
                .await
                .map_err(|e| match e {
                    awc::error::SendRequestError::Connect(e) => connect_failure(&url, &e),
                    other => NoAnswer::Silent(format!("{url}: {other}")),
                })?;
            let status = response.status();
            let bytes = response
                .body()
                .limit(1024 * 1024)
                .await
                .map_err(|e| NoAnswer::Silent(format!("{url}: {e}")))?;
            let text = String::from_utf8_lossy(&bytes).into_owned();
            if status != StatusCode::OK {
                return Ok(Answer::Refused(status.as_u16(), text));
            }
            serde_json::from_str(&text)
                .map(Answer::Json)
                .map_err(|e| NoAnswer::Silent(format!("{url}: not JSON: {e}")))
        });
        called
            .await
            .unwrap_or_else(|| Err(NoAnswer::Silent("the outbound thread has stopped".into())))
    }

    /// `post`, tried once more when the node did not answer.
    async fn post_twice(
        &self,
        node: &NodeLease,
        path: &str,
        body: Value,
    ) -> Result<Answer, NoAnswer> {
        match self.post(node, path, body.clone()).await {
            Err(first) => {
                tracing::info!(node = %node.node_id, error = %first, "another node did not answer; trying once more");
                self.post(node, path, body).await
            }
            answered => answered,
        }
    }

    /// A command whose station's node did not answer: a configuration-like
    /// one waits for the station's next boot as stored; an immediate one
    /// ends `Failed` with the reason (its waiter told).
    async fn unreachable(&self, command: SendCommand, node: &NodeLease, why: &str) {
        let SendCommand {
            command: mut record,
            waiter,
        } = command;
        if record.class != DeliveryClass::Immediate {
            return;
        }
        let error = CommandError {
            code: "NodeUnreachable".into(),
            description: format!(
                "node {} holding the station did not answer: {why}",
                node.node_id
            ),
            details: None,
        };
        record.settle(CommandStatus::Failed, None, Some(error), chrono::Utc::now());
        if let Err(e) = self.store.update_command(&record).await {
            tracing::warn!(error = %e, command = %record.id, "cannot mark a command failed");
        }
        if let Some(waiter) = waiter {
            let _ = waiter.send(record);
        }
    }

    /// Looks a forwarded command up in the store now and then while its
    /// caller waits (in `waiting`), in case the holding node's push of its
    /// answer is lost; gives up when the caller did, or after the longest
    /// wait.
    fn poll_while_waiting(&self, station: String, id: String) {
        let (store, waiting) = (self.store.clone(), self.waiting.clone());
        tokio::spawn(async move {
            let started = Instant::now();
            while started.elapsed() < LONGEST_WAIT {
                tokio::time::sleep(WAIT_POLL).await;
                let gone = match lock(&waiting).get(&id) {
                    None => return,
                    Some(waiter) => waiter.is_closed(),
                };
                if gone {
                    break;
                }
                if let Ok(Some(command)) = store.command(&station, &id).await {
                    if command.status != CommandStatus::Pending {
                        if let Some(waiter) = lock(&waiting).remove(&id) {
                            crate::metrics::cluster_forward_answer("polled");
                            let _ = waiter.send(command);
                        }
                        return;
                    }
                }
            }
            lock(&waiting).remove(&id);
        });
    }

    /// The answer of a command this node forwarded, pushed by the node that
    /// delivered it: handed to the caller still waiting for it. False when
    /// none waits (already answered, or the caller gave up).
    pub fn settled(&self, command: CommandRecord) -> bool {
        let Some(waiter) = lock(&self.waiting).remove(&command.id) else {
            return false;
        };
        crate::metrics::cluster_forward_answer("pushed");
        waiter.send(command).is_ok()
    }

    /// Waits for the answer of a command forwarded to this node by node
    /// `origin`, whose REST caller waits for it, and pushes it there.
    pub fn reply_when_settled(
        &self,
        origin: String,
        answer: tokio::sync::oneshot::Receiver<CommandRecord>,
    ) {
        let link = self.clone();
        tokio::spawn(async move {
            let Ok(Ok(command)) = tokio::time::timeout(LONGEST_WAIT, answer).await else {
                return;
            };
            let Some(node) = (link.live_nodes().await.into_iter()).find(|n| n.node_id == origin)
            else {
                return tracing::info!(node = %origin, command = %command.id, "the node waiting for a command's answer is gone");
            };
            let id = command.id.clone();
            let body = json!({ "command": command });
            if let Err(e) = link.post_twice(&node, "/cluster/v1/settled", body).await {
                // Its poll of the store finds the answer instead.
                tracing::info!(node = %origin, command = %id, error = %e, "cannot push a command's answer to the node waiting for it");
            }
        });
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[async_trait]
impl Peers for ClusterLink {
    fn connected(&self, station: &str, connection: ConnectionId) {
        let link = self.clone();
        let station = station.to_owned();
        tokio::spawn(async move {
            // Another node still holding the station is told to let go.
            if let Some((node, _)) = link.held_elsewhere(&station).await {
                let body = json!({"station_id": station, "connection": connection});
                match link.post_twice(&node, "/cluster/v1/taken-over", body).await {
                    Ok(Answer::Json(_)) => {}
                    Ok(Answer::Refused(status, text)) => {
                        tracing::warn!(node = %node.node_id, status, %text, "another node refused a takeover");
                    }
                    Err(e) => {
                        tracing::info!(node = %node.node_id, error = %e, "the node that held a station did not answer its takeover");
                    }
                }
            }
            let presence = Presence {
                node_id: link.node.node_id.clone(),
                connection,
            };
            if let Some(cluster) = link.store.cluster() {
                match cluster.put_presence(&station, presence).await {
                    Ok(()) => crate::metrics::cluster_presence_write("connect"),
                    Err(e) => {
                        tracing::warn!(error = %e, %station, "cannot write a station's presence")
                    }
                }
            }
        });
    }

    fn disconnected(&self, station: &str, connection: ConnectionId) {
        let link = self.clone();
        let station = station.to_owned();
        // On the runtime `start` ran on: a station dropped at shutdown stops
        // while its worker's runtime is being torn down, where
        // `tokio::spawn` would panic and the actor's last writes be skipped.
        self.background.spawn(async move {
            if let Some(cluster) = link.store.cluster() {
                match cluster.remove_presence(&station, connection).await {
                    Ok(()) => crate::metrics::cluster_presence_write("disconnect"),
                    Err(e) => {
                        tracing::warn!(error = %e, %station, "cannot remove a station's presence")
                    }
                }
            }
        });
    }

    async fn forward(&self, station: &str, command: SendCommand) -> Result<(), RouteError> {
        let Some((node, presence)) = self.held_elsewhere(station).await else {
            return Err(RouteError::NotConnected);
        };
        let SendCommand {
            command: record,
            waiter,
        } = command;
        let id = record.id.clone();
        // A waiting caller's answer is pushed back here by the holding node,
        // maybe before the deliver call has returned: the waiter is in
        // place first.
        let body = match waiter {
            Some(waiter) => {
                lock(&self.waiting).insert(id.clone(), waiter);
                json!({"command": record, "reply_to": self.node.node_id})
            }
            None => json!({"command": record}),
        };
        let started = Instant::now();
        let answer = self.post_twice(&node, "/cluster/v1/deliver", body).await;
        let took = started.elapsed();
        let routed = match answer {
            Ok(Answer::Json(answer)) => match answer["routed"].as_str() {
                Some("ok") => Ok(()),
                Some("busy") => Err(RouteError::Busy),
                _ => Err(RouteError::NotConnected),
            },
            Ok(Answer::Refused(status, text)) => {
                tracing::warn!(node = %node.node_id, status, %text, "another node refused a forwarded command");
                Err(RouteError::NotConnected)
            }
            Err(e) => {
                crate::metrics::cluster_forward("unreachable", took);
                if let NoAnswer::Gone(_) = e {
                    // Nothing listens where the node was: its row is stale.
                    tracing::warn!(node = %node.node_id, error = %e, %station, "the node holding a station is gone; its presence is cleared");
                    if let Some(cluster) = self.store.cluster() {
                        let _ = cluster.remove_presence(station, presence.connection).await;
                    }
                } else {
                    tracing::warn!(node = %node.node_id, error = %e, %station, "the node holding a station did not answer a forwarded command");
                }
                let waiter = lock(&self.waiting).remove(&id);
                let command = SendCommand {
                    command: record,
                    waiter,
                };
                self.unreachable(command, &node, &e.to_string()).await;
                return Err(RouteError::NotConnected);
            }
        };
        let result = match routed {
            Ok(()) => "delivered",
            Err(RouteError::Busy) => "busy",
            Err(RouteError::NotConnected) => "not_connected",
        };
        crate::metrics::cluster_forward(result, took);
        let waits = lock(&self.waiting).contains_key(&id);
        match routed {
            Ok(()) if waits => self.poll_while_waiting(station.to_owned(), id),
            Ok(()) => {}
            // Not delivered: the caller hears the route's error, not a wait.
            Err(_) => drop(lock(&self.waiting).remove(&id)),
        }
        routed
    }

    async fn holder(&self, station: &str) -> Option<String> {
        self.held_elsewhere(station)
            .await
            .map(|(node, _)| node.node_id)
    }

    async fn holders(&self, stations: &[String]) -> HashMap<String, String> {
        use futures_util::{stream, StreamExt};
        let Some(cluster) = self.store.cluster() else {
            return HashMap::new();
        };
        let live: HashSet<String> = (self.live_nodes().await.into_iter())
            .map(|node| node.node_id)
            .collect();
        let own = self.node.node_id.as_str();
        // Point reads side by side: a page of a fleet list costs a few
        // round trips, not one per station.
        let reads = stations.iter().cloned().map(|station| async move {
            let presence = cluster.presence(&station).await;
            (station, presence)
        });
        let reads: Vec<_> = reads.collect();
        stream::iter(reads)
            .buffer_unordered(PRESENCE_READS_AT_ONCE)
            .filter_map(|(station, presence)| {
                let node = match presence {
                    Ok(Some(presence)) => Some(presence.node_id),
                    Ok(None) => None,
                    Err(e) => {
                        tracing::warn!(error = %e, %station, "cannot read a station's presence");
                        None
                    }
                };
                let held = node.filter(|node| node != own && live.contains(node));
                std::future::ready(held.map(|node| (station, node)))
            })
            .collect()
            .await
    }

    fn node_id(&self) -> &str {
        &self.node.node_id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use awc::error::ConnectError;

    #[actix_rt::test]
    async fn a_node_where_nothing_listens_is_gone() {
        // A real refused connection, as awc reports it.
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let url = format!("http://127.0.0.1:{port}/cluster/v1/deliver");
        let error = awc::Client::new().post(&url).send().await.unwrap_err();
        let awc::error::SendRequestError::Connect(error) = error else {
            panic!("not a connect error: {error}");
        };
        assert!(matches!(connect_failure(&url, &error), NoAnswer::Gone(_)));
    }

    #[test]
    fn this_node_out_of_sockets_or_a_slow_connect_says_nothing_of_the_other_node() {
        let url = "http://10.0.0.5:9412/cluster/v1/deliver";
        // EMFILE, as accept and connect report it at the open-file limit.
        let out_of_files = ConnectError::Io(std::io::Error::from_raw_os_error(24));
        assert!(matches!(
            connect_failure(url, &out_of_files),
            NoAnswer::Silent(why) if why.contains("10.0.0.5")
        ));
        assert!(matches!(
            connect_failure(url, &ConnectError::Timeout),
            NoAnswer::Silent(_)
        ));
    }
}
