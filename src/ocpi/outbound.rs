//! The thread OCPI's outgoing calls run on: an actix arbiter of its own,
//! so the HTTP client (whose futures stay on one thread) serves every
//! caller, whichever thread asked, and a slow partner never holds up the
//! REST or OCPP workers.

use std::future::Future;

use actix_rt::{Arbiter, ArbiterHandle};

/// A handle to the outbound thread.
#[derive(Clone)]
pub struct Outbound {
    arbiter: ArbiterHandle,
}

impl Outbound {
    /// Starts the thread.
    pub fn start() -> (Outbound, Arbiter) {
        let arbiter = Arbiter::new();
        (
            Outbound {
                arbiter: arbiter.handle(),
            },
            arbiter,
        )
    }

    /// Runs the future `make` builds on the outbound thread and hands its
    /// output back (None when the thread has stopped).
    pub async fn run<F, Fut, T>(&self, make: F) -> Option<T>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = T> + 'static,
        T: Send + 'static,
    {
        let (answer, answered) = tokio::sync::oneshot::channel();
        self.spawn(move || async move {
            let _ = answer.send(make().await);
        });
        answered.await.ok()
    }

    /// Runs the future `make` builds on the outbound thread.
    pub fn spawn<F, Fut>(&self, make: F)
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        let sent = self.arbiter.spawn_fn(move || {
            actix_rt::spawn(make());
        });
        if !sent {
            tracing::warn!("the OCPI outbound thread has stopped; call not made");
        }
    }
}
