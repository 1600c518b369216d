//! Two ScyllaDB stores on one keyspace, as two voltgate nodes: what one
//! node's copies of its own writes must not hide from the other.

use std::panic::AssertUnwindSafe;

use futures_util::FutureExt;
use voltgate::store::scylla::ScyllaStore;
use voltgate::store::{Store, TransactionEventKind, TransactionStore};

use crate::cases::event;
use crate::fixture::scylla_settings;

#[tokio::test]
async fn two_nodes_writing_one_transaction_at_once_lose_no_event() {
    on_two_nodes(interleave).await;
}

/// Runs `scenario` with two stores on one fresh keyspace (skipped, saying
/// so, without a CQL node), then drops the keyspace whatever happened.
async fn on_two_nodes(scenario: impl AsyncFnOnce(&ScyllaStore, &ScyllaStore)) {
    let settings = match scylla_settings() {
        Ok(settings) => settings,
        Err(why) => return crate::say_skipped(&why),
    };
    let a = ScyllaStore::connect(&settings).await.expect("node A");
    let b = ScyllaStore::connect(&settings).await.expect("node B");
    let outcome = AssertUnwindSafe(scenario(&a, &b)).catch_unwind().await;
    a.drop_keyspace().await.expect("keyspace dropped");
    a.close().await;
    b.close().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

async fn applied(store: &ScyllaStore, seq_no: u64, kind: TransactionEventKind) -> bool {
    store
        .apply_transaction_event(event("CS1", "T1", seq_no, kind))
        .await
        .expect("applied")
}

/// A starts the transaction and keeps its row; B applies the next event
/// from a read; A applies another from its (now outdated) row, as when the
/// station is briefly connected to both nodes, so A's summary overwrites
/// B's. Every reader must still count every event once.
async fn interleave(a: &ScyllaStore, b: &ScyllaStore) {
    use TransactionEventKind::{Ended, Started, Updated};
    assert!(applied(a, 0, Started).await);
    assert!(applied(b, 1, Updated).await);
    assert!(applied(a, 2, Updated).await);
    for (name, store) in [("A", a), ("B", b)] {
        let tx = store.transaction("CS1", "T1").await.unwrap().unwrap();
        assert_eq!(
            (tx.event_count, tx.meter_value_count, tx.last_seq_no),
            (3, 3, 2),
            "read through {name}"
        );
        let values = store
            .meter_values("CS1", "T1", voltgate::store::Page::new(0, 10))
            .await
            .unwrap();
        assert_eq!(values.len(), 3, "meter values through {name}");
    }
    // Once the station connects to a node, that node refuses every seq_no
    // applied through any node.
    a.station_connected("CS1");
    assert!(!applied(a, 1, Updated).await, "B's event again through A");
    b.station_connected("CS1");
    assert!(!applied(b, 2, Updated).await, "A's event again through B");
    assert!(applied(b, 3, Ended).await);
    let tx = a.transaction("CS1", "T1").await.unwrap().unwrap();
    assert_eq!((tx.event_count, tx.meter_value_count), (4, 4));
    assert!(tx.ended_at.is_some());
}

#[tokio::test]
async fn a_fresh_ocpp16_id_skips_the_read_only_for_its_own_station() {
    on_two_nodes(fresh_ids).await;
}

/// A hands out a 1.6 id for station CS16; a 2.0.1 station that happens to
/// use the same number as its own transaction id has events written
/// through B. A retried Started of that other station, arriving through A,
/// must be found in the store (a duplicate), not taken for the fresh 1.6
/// transaction; CS16's own Started is applied and counted once.
async fn fresh_ids(a: &ScyllaStore, b: &ScyllaStore) {
    use TransactionEventKind::{Started, Updated};
    let number = a
        .next_transaction_number("CS16")
        .await
        .expect("id")
        .to_string();
    let other = |seq_no, kind| event("CS201", &number, seq_no, kind);
    assert!(b.apply_transaction_event(other(0, Started)).await.unwrap());
    assert!(b.apply_transaction_event(other(1, Updated)).await.unwrap());
    assert!(
        !a.apply_transaction_event(other(0, Started)).await.unwrap(),
        "another station's retried Started is a duplicate"
    );
    let tx = a.transaction("CS201", &number).await.unwrap().unwrap();
    assert_eq!(
        tx.event_count, 2,
        "the other station's row kept both events"
    );
    let own = || event("CS16", &number, 0, Started);
    assert!(a.apply_transaction_event(own()).await.unwrap());
    assert!(
        !a.apply_transaction_event(own()).await.unwrap(),
        "counted once"
    );
    let tx = b.transaction("CS16", &number).await.unwrap().unwrap();
    assert_eq!(tx.event_count, 1);
}
