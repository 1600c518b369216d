//! The store conformance suite: one set of cases (`cases.rs`) that every
//! backend must pass, instantiated per backend by `conformance!`.
//!
//! Backends that need an outside service (ScyllaDB) return no fixture when
//! the service is not configured, and their cases print that they skipped.

mod cases;
mod fixture;
mod scylla_nodes;
mod scylla_schema;

use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures_util::FutureExt;

use fixture::Fixture;

/// Runs one case on a fresh fixture, or says why it cannot; the fixture's
/// outside state (a ScyllaDB keyspace) is removed whether the case passed.
async fn run<Fut: Future<Output = ()>>(
    fixture: Result<Fixture, String>,
    case: impl FnOnce(Fixture) -> Fut,
) {
    let fixture = match fixture {
        Ok(fixture) => fixture,
        Err(why) => return say_skipped(&why),
    };
    let cleanup = fixture.cleanup();
    let outcome = AssertUnwindSafe(case(fixture)).catch_unwind().await;
    cleanup.run().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// Says once per run, past the test harness's output capture, why cases
/// did not run (a passing test's own output is not shown).
pub fn say_skipped(why: &str) {
    use std::io::Write;
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = writeln!(std::io::stderr(), "skipped: {why}");
    });
}

macro_rules! conformance {
    ($backend:ident, $open:expr, [$($case:ident),* $(,)?]) => {
        mod $backend {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    run($open.await, cases::$case).await
                }
            )*
        }
    };
}

/// Instantiates `conformance!` for one backend with every case.
macro_rules! every_case {
    ($backend:ident, $open:expr) => {
        conformance!(
            $backend,
            $open,
            [
                register_creates_a_pending_station,
                reregister_keeps_state_and_replaces_credentials,
                unknown_station_has_no_work_and_refuses_new_work,
                stations_list_in_id_order_with_paging,
                cursor_pages_walk_every_record_once,
                rows_of_similar_station_ids_stay_apart,
                provisioning_and_runtime_roundtrip,
                tokens_roundtrip_list_and_delete,
                certificates_roundtrip_and_delete,
                locations_roundtrip_and_list,
                location_writes_are_conditional_on_the_version_read,
                locations_list_by_last_updated,
                only_published_locations_are_listed_for_partners,
                evse_links_follow_the_records,
                locations_are_found_by_place,
                cities_are_listed_per_province,
                templates_roundtrip_and_list,
                ocpi_partners_are_found_by_id_and_by_their_current_token,
                ocpi_push_queues_keep_order_and_coalesce_when_asked,
                ocpi_sessions_and_cdrs_list_per_party_by_last_updated,
                cluster_leases_expire_and_the_newest_presence_wins,
                transaction_events_are_idempotent_by_seq_no,
                transactions_fold_their_events,
                transactions_and_meter_values_page,
                an_event_with_a_large_meter_report_keeps_every_value,
                an_event_with_one_huge_meter_value_is_kept,
                transaction_numbers_are_unique_and_survive_reopen,
                concurrent_writes_all_land,
                concurrent_registrations_of_one_station_agree,
                a_concurrently_delivered_event_counts_once,
                concurrent_transaction_numbers_are_distinct,
                writes_survive_reopen,
                commands_keep_their_outbox_and_list_newest_first,
                commands_need_a_station_and_an_existing_record,
                several_commands_are_stored_in_their_order,
                pending_commands_survive_reopen,
                batches_keep_their_commands_in_station_order,
                variables_are_kept_per_key_in_key_order,
                active_transactions_are_indexed_fleet_wide,
            ]
        );
    };
}

every_case!(redb, Fixture::redb());
every_case!(scylla, Fixture::scylla());
