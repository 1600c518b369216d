//! Criterion benchmarks of the store operations on the message path: token
//! lookup (Authorize), station lookup (every handshake's auth check) and a
//! transaction event write (durable before it returns). The embedded store
//! always; ScyllaDB too when `VOLTGATE_SCYLLA_URI` names a node (in a
//! keyspace of its own, dropped afterwards). Figures in `benches/README.md`.

use std::sync::Arc;

use chrono::Utc;
use criterion::{criterion_group, criterion_main, Criterion};
use futures_util::StreamExt;

use voltgate::store::redb::RedbStore;
use voltgate::store::scylla::{ScyllaSettings, ScyllaStore};
use voltgate::store::{
    CacheMode, ChargeStationAuth, SecurityProfile, Store, Token, TokenType, TransactionEvent,
    TransactionEventKind,
};

const TOKENS: usize = 10_000;
const STATIONS: usize = 10_000;
/// Events of one benchmark transaction before the next one starts.
const EVENTS_PER_TRANSACTION: u64 = 100;

fn token(uid: String) -> Token {
    Token {
        country_code: "GB".into(),
        party_id: "TWK".into(),
        token_type: TokenType::Rfid,
        uid,
        contract_id: "GBTWK012345678V".into(),
        visual_number: None,
        issuer: "Bench".into(),
        group_id: None,
        valid: true,
        language_code: None,
        cache_mode: CacheMode::Always,
        last_updated: None,
    }
}

/// Fills `store` with TOKENS tokens and STATIONS stations, 128 writes in flight.
async fn fill(store: &Arc<dyn Store>) {
    let writes = (0..TOKENS.max(STATIONS)).map(|i| {
        let store = store.clone();
        async move {
            store.put_token(token(format!("TOKEN{i:06}"))).await?;
            let auth = ChargeStationAuth {
                security_profile: SecurityProfile::UnsecuredBasicAuth,
                base64_sha256_password: Some("x".into()),
                invalid_username_allowed: false,
            };
            store
                .register_station(&format!("CS{i:06}"), auth, Utc::now())
                .await
                .map(|_| ())
        }
    });
    let mut writes = futures_util::stream::iter(writes).buffer_unordered(128);
    while let Some(done) = writes.next().await {
        done.expect("written");
    }
}

/// The three operations on one backend.
fn bench_store(c: &mut Criterion, runtime: &tokio::runtime::Runtime, store: Arc<dyn Store>) {
    runtime.block_on(fill(&store));
    let mut group = c.benchmark_group(format!("store/{}", store.backend()));
    let mut n = 0usize;
    group.bench_function("token_lookup", |b| {
        b.to_async(runtime).iter(|| {
            n = (n + 7919) % TOKENS;
            let uid = format!("TOKEN{n:06}");
            let store = store.clone();
            async move { store.token(&uid).await.expect("read").expect("found") }
        })
    });
    group.bench_function("station_lookup", |b| {
        b.to_async(runtime).iter(|| {
            n = (n + 7919) % STATIONS;
            let id = format!("CS{n:06}");
            let store = store.clone();
            async move { store.station(&id).await.expect("read").expect("found") }
        })
    });
    // Each write waits until it is durable (redb: fsync; ScyllaDB: a quorum
    // of replicas through the compare-and-set), as a handler does. A new
    // transaction every EVENTS_PER_TRANSACTION events, as on a real station.
    let mut seq = 0u64;
    group.bench_function("transaction_event_write", |b| {
        b.to_async(runtime).iter(|| {
            seq += 1;
            let in_transaction = seq % EVENTS_PER_TRANSACTION;
            let event = TransactionEvent {
                station_id: "CS000001".into(),
                transaction_id: format!("BENCH-TX-{}", seq / EVENTS_PER_TRANSACTION),
                seq_no: in_transaction,
                kind: if in_transaction == 0 {
                    TransactionEventKind::Started
                } else {
                    TransactionEventKind::Updated
                },
                timestamp: Utc::now(),
                id_token: None,
                offline: false,
                evse_id: Some(1),
                connector_id: Some(1),
                stop_reason: None,
                meter_values: Vec::new(),
            };
            let store = store.clone();
            async move { assert!(store.apply_transaction_event(event).await.expect("written")) }
        })
    });
    group.finish();
}

fn lookups(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let redb: Arc<dyn Store> = Arc::new(RedbStore::open(dir.path()).expect("store"));
    bench_store(c, &runtime, redb);

    let Ok(uri) = std::env::var("VOLTGATE_SCYLLA_URI") else {
        eprintln!("VOLTGATE_SCYLLA_URI is not set: ScyllaDB store benchmarks not run");
        return;
    };
    let nodes = uri.split(',').map(str::to_owned).collect();
    let keyspace = format!("vg_bench_{}", std::process::id());
    let settings = ScyllaSettings::new(nodes, keyspace);
    let scylla = Arc::new(
        runtime
            .block_on(ScyllaStore::connect(&settings))
            .expect("ScyllaDB store opens"),
    );
    bench_store(c, &runtime, scylla.clone());
    runtime
        .block_on(scylla.drop_keyspace())
        .expect("bench keyspace dropped");
}

criterion_group!(benches, lookups);
criterion_main!(benches);
