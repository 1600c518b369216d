//! Criterion benchmarks of the store operations on the message path: token
//! lookup (Authorize), station lookup (every handshake's auth check) and a
//! transaction event write (group commit with fsync). The embedded store by
//! default; figures in `benches/README.md`.

use std::sync::Arc;

use chrono::Utc;
use criterion::{criterion_group, criterion_main, Criterion};

use voltgate::store::redb::RedbStore;
use voltgate::store::{
    CacheMode, ChargeStationAuth, SecurityProfile, Store, Token, TokenType, TransactionEvent,
    TransactionEventKind,
};

const TOKENS: usize = 10_000;
const STATIONS: usize = 10_000;

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

fn lookups(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let store: Arc<dyn Store> = Arc::new(RedbStore::open(dir.path()).expect("store"));
    runtime.block_on(async {
        // Concurrent writes share group commits: the fill takes seconds, not minutes.
        let mut writes = tokio::task::JoinSet::new();
        for i in 0..TOKENS.max(STATIONS) {
            let store = store.clone();
            writes.spawn(async move {
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
            });
        }
        while let Some(done) = writes.join_next().await {
            done.expect("task").expect("written");
        }
    });
    let mut group = c.benchmark_group(format!("store/{}", store.backend()));
    let mut n = 0usize;
    group.bench_function("token_lookup", |b| {
        b.to_async(&runtime).iter(|| {
            n = (n + 7919) % TOKENS;
            let uid = format!("TOKEN{n:06}");
            let store = store.clone();
            async move { store.token(&uid).await.expect("read").expect("found") }
        })
    });
    group.bench_function("station_lookup", |b| {
        b.to_async(&runtime).iter(|| {
            n = (n + 7919) % STATIONS;
            let id = format!("CS{n:06}");
            let store = store.clone();
            async move { store.station(&id).await.expect("read").expect("found") }
        })
    });
    // Each write waits for its commit (fsync), as a handler does; the
    // disk under the temp dir decides most of this figure.
    let mut seq = 0u64;
    group.bench_function("transaction_event_write", |b| {
        b.to_async(&runtime).iter(|| {
            seq += 1;
            let event = TransactionEvent {
                station_id: "CS000001".into(),
                transaction_id: "BENCH-TX".into(),
                seq_no: seq,
                kind: if seq == 1 {
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

criterion_group!(benches, lookups);
criterion_main!(benches);
