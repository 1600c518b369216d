//! What every station connection of a node shares: the [`Engine`] (handler
//! environment, directory of connected stations, limits and timeouts), and
//! the count of store writes still running for connections that closed,
//! which a shutdown waits for.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::directory::Directory;
use super::handlers::Env;
use super::session::Limits;
use crate::store::{CommandRecord, StationRuntime};

/// What the engine needs, shared by all connections of a node.
pub struct Engine {
    /// Handler environment (store, intervals).
    pub env: Arc<Env>,
    /// The node's directory of connected stations.
    pub directory: Arc<dyn Directory>,
    /// Session limits.
    pub limits: Limits,
    /// How often an idle connection is pinged.
    pub ping_interval: Duration,
    /// A connection silent for this long is closed.
    pub idle_timeout: Duration,
    /// Largest WebSocket frame accepted; larger ones close the connection.
    pub max_frame_bytes: usize,
    /// Most bytes sent to a station and not yet seen read (0: no bound).
    pub max_unread_bytes: u64,
    /// The last store writes of closing connections, which a shutdown
    /// waits for before closing the store.
    pub final_writes: Arc<FinalWrites>,
    /// Where those writes run: the runtime `start` ran on, which outlives
    /// the listeners' workers (None outside a runtime: the actor's own).
    pub(super) background: Option<tokio::runtime::Handle>,
    pub(super) next_connection: AtomicU64,
}

impl Engine {
    /// The engine for a node.
    pub fn new(
        env: Arc<Env>,
        directory: Arc<dyn Directory>,
        limits: Limits,
        idle_timeout: Duration,
        max_frame_bytes: usize,
    ) -> Self {
        Engine {
            env,
            directory,
            limits,
            ping_interval: (idle_timeout / 3).max(Duration::from_secs(1)),
            idle_timeout,
            max_frame_bytes,
            max_unread_bytes: 0,
            final_writes: Arc::default(),
            background: tokio::runtime::Handle::try_current().ok(),
            next_connection: AtomicU64::new(1),
        }
    }

    /// The last writes of a closing connection: what the station last
    /// reported (including when it was last seen) and the command its close
    /// interrupted, if any. They run off the connection's worker, which may
    /// stop (at shutdown) before they land; a shutdown waits for them.
    pub fn write_at_close(
        &self,
        station: String,
        runtime: StationRuntime,
        interrupted: Option<CommandRecord>,
    ) {
        let store = self.env.store.clone();
        drop(self.spawn_write(async move {
            if let Err(e) = store.set_runtime(&station, runtime).await {
                tracing::warn!(error = %e, %station, "cannot store runtime state at disconnect");
            }
            if let Some(failed) = interrupted {
                if let Err(e) = store.update_command(&failed).await {
                    tracing::warn!(error = %e, %station, "cannot record an interrupted command");
                }
            }
        }));
    }

    /// Runs a connection's store write off its actor, so that it lands even
    /// when the connection closes first (a stopping actor drops the futures
    /// it spawned: a command's answer followed at once by the station's
    /// close was lost so); a shutdown waits for it. The handle gives the
    /// outcome to an actor still there.
    pub fn spawn_write<T: Send + 'static>(
        &self,
        write: impl std::future::Future<Output = T> + Send + 'static,
    ) -> tokio::task::JoinHandle<T> {
        let pending = self.final_writes.begin();
        let write = async move {
            let outcome = write.await;
            drop(pending);
            outcome
        };
        match &self.background {
            Some(runtime) => runtime.spawn(write),
            None => actix::spawn(write),
        }
    }
}

/// Store writes still running for connections that closed.
#[derive(Debug, Default)]
pub struct FinalWrites {
    pending: std::sync::atomic::AtomicUsize,
    settled: tokio::sync::Notify,
}

/// One final write in progress; done when dropped.
pub struct PendingWrite(Arc<FinalWrites>);

impl Drop for PendingWrite {
    fn drop(&mut self) {
        if self.0.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.settled.notify_waiters();
        }
    }
}

impl FinalWrites {
    /// Counts a write until the returned guard is dropped.
    pub fn begin(self: &Arc<Self>) -> PendingWrite {
        self.pending.fetch_add(1, Ordering::AcqRel);
        PendingWrite(self.clone())
    }

    /// Resolves once no write is running.
    pub async fn settled(&self) {
        loop {
            let notified = self.settled.notified();
            if self.pending.load(Ordering::Acquire) == 0 {
                return;
            }
            notified.await;
        }
    }
}
