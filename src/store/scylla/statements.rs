//! Every CQL statement the store runs on a request path, prepared once at
//! start. Prepared statements carry their partition key, so the driver
//! routes each one to a replica that owns it (token-aware).

use scylla::client::session::Session;
use scylla::statement::batch::{Batch, BatchType};
use scylla::statement::prepared::PreparedStatement;

use crate::store::{StoreError, StoreResult};

/// The statement texts, named. `idempotent` ones may be retried by the
/// driver after a timeout; LWTs and anything else never are.
macro_rules! statements {
    ($( $name:ident, $idempotent:expr, $cql:expr; )*) => {
        /// The prepared statements.
        pub struct Statements {
            $( pub $name: PreparedStatement, )*
            /// Token record + directory entry, in one logged batch.
            pub token_put: Batch,
            /// Token record + directory entry removed together.
            pub token_delete: Batch,
            /// Template record + directory entry, in one logged batch.
            pub template_put: Batch,
            /// Command record + outbox entry, in one logged batch.
            pub command_open: Batch,
            /// Command record updated + outbox entry removed, in one logged batch.
            pub command_settle: Batch,
            /// Command record + outbox entry + batch member, in one logged batch.
            pub command_in_batch: Batch,
        }

        /// (name, idempotent, text) of every single statement.
        pub const TEXTS: &[(&str, bool, &str)] = &[ $( (stringify!($name), $idempotent, $cql), )* ];

        impl Statements {
            /// Prepares every statement; fails with the statement that the cluster refused.
            pub async fn prepare(session: &Session) -> StoreResult<Statements> {
                let mut prepared = Statements {
                    $( $name: prepare(session, $cql, $idempotent).await?, )*
                    token_put: Batch::new(BatchType::Logged),
                    token_delete: Batch::new(BatchType::Logged),
                    template_put: Batch::new(BatchType::Logged),
                    command_open: Batch::new(BatchType::Logged),
                    command_settle: Batch::new(BatchType::Logged),
                    command_in_batch: Batch::new(BatchType::Logged),
                };
                prepared.token_put = logged(&[&prepared.token_upsert, &prepared.directory_insert]);
                prepared.token_delete = logged(&[&prepared.token_remove, &prepared.directory_delete]);
                prepared.template_put =
                    logged(&[&prepared.template_upsert, &prepared.directory_insert]);
                prepared.command_open =
                    logged(&[&prepared.command_put, &prepared.outbox_insert]);
                prepared.command_settle =
                    logged(&[&prepared.command_put, &prepared.outbox_delete]);
                prepared.command_in_batch = logged(&[
                    &prepared.command_put,
                    &prepared.outbox_insert,
                    &prepared.batch_member_put,
                ]);
                Ok(prepared)
            }
        }
    };
}

statements! {
    station_insert, false,
        "INSERT INTO stations (id, security_profile, password_hash, invalid_username_allowed, provisioning, registered_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS";
    station_update_auth, false,
        "UPDATE stations SET security_profile = ?, password_hash = ?, invalid_username_allowed = ?, updated_at = ? WHERE id = ? IF EXISTS";
    station_get, true,
        "SELECT id, security_profile, password_hash, invalid_username_allowed, provisioning, registered_at, updated_at FROM stations WHERE id = ?";
    station_set_provisioning, false,
        "UPDATE stations SET provisioning = ?, updated_at = ? WHERE id = ? IF EXISTS";

    directory_insert, true,
        "INSERT INTO directory (kind, bucket, entry) VALUES (?, ?, ?)";
    directory_delete, true,
        "DELETE FROM directory WHERE kind = ? AND bucket = ? AND entry = ?";
    directory_count, true,
        "SELECT COUNT(*) FROM directory WHERE kind = ? AND bucket = ? AND entry >= ? AND entry < ?";
    directory_after, true,
        "SELECT entry FROM directory WHERE kind = ? AND bucket = ? AND entry > ?";

    runtime_get, true,
        "SELECT record FROM station_runtime WHERE station_id = ?";
    runtime_put, true,
        "INSERT INTO station_runtime (station_id, record) VALUES (?, ?)";

    token_upsert, true,
        "INSERT INTO tokens (uid, record) VALUES (?, ?)";
    token_get, true,
        "SELECT record FROM tokens WHERE uid = ?";
    token_remove, true,
        "DELETE FROM tokens WHERE uid = ?";

    certificate_put, true,
        "INSERT INTO certificates (hash, pem, uploaded_at) VALUES (?, ?, ?)";
    certificate_get, true,
        "SELECT pem, uploaded_at FROM certificates WHERE hash = ?";
    certificate_delete, true,
        "DELETE FROM certificates WHERE hash = ?";

    location_create, false,
        "INSERT INTO locations (id, record) VALUES (?, ?) IF NOT EXISTS";
    location_replace, false,
        "UPDATE locations SET record = ? WHERE id = ? IF record = ?";
    location_delete, false,
        "DELETE FROM locations WHERE id = ? IF record = ?";
    evse_link_put, true,
        "INSERT INTO evse_links (station_id, location_id, evse_uid, ocpp_evse_id, ocpp_connector_id) VALUES (?, ?, ?, ?, ?)";
    evse_link_delete, true,
        "DELETE FROM evse_links WHERE station_id = ? AND location_id = ? AND evse_uid = ?";
    evse_links_of, true,
        "SELECT location_id, evse_uid, ocpp_evse_id, ocpp_connector_id FROM evse_links WHERE station_id = ?";
    cell_put, true,
        "INSERT INTO location_cells (area, cell, location_id, lat, lon, summary) VALUES (?, ?, ?, ?, ?, ?)";
    cell_delete, true,
        "DELETE FROM location_cells WHERE area = ? AND cell = ? AND location_id = ?";
    cells_between, true,
        "SELECT cell, location_id, lat, lon, summary FROM location_cells WHERE area = ? AND cell >= ? AND cell < ?";
    city_put, true,
        "INSERT INTO province_cities (province, city, location_id) VALUES (?, ?, ?)";
    city_delete, true,
        "DELETE FROM province_cities WHERE province = ? AND city = ? AND location_id = ?";
    city_after, true,
        "SELECT city FROM province_cities WHERE province = ? AND city > ? LIMIT 1";
    template_upsert, true,
        "INSERT INTO hardware_templates (id, record) VALUES (?, ?)";
    template_get, true,
        "SELECT record FROM hardware_templates WHERE id = ?";
    location_get, true,
        "SELECT record FROM locations WHERE id = ?";

    partner_put, true,
        "INSERT INTO ocpi_partners (scope, id, record) VALUES (?, ?, ?)";
    partner_get, true,
        "SELECT record FROM ocpi_partners WHERE scope = ? AND id = ?";
    partner_list, true,
        "SELECT record FROM ocpi_partners WHERE scope = ?";
    partner_delete, true,
        "DELETE FROM ocpi_partners WHERE scope = ? AND id = ?";
    partner_token_put, true,
        "INSERT INTO ocpi_partner_tokens (token_hash, partner_id) VALUES (?, ?)";
    partner_token_get, true,
        "SELECT partner_id FROM ocpi_partner_tokens WHERE token_hash = ?";
    partner_token_delete, true,
        "DELETE FROM ocpi_partner_tokens WHERE token_hash = ?";
    push_put, true,
        "INSERT INTO ocpi_pushes (partner_id, seq, record) VALUES (?, ?, ?)";
    push_get, true,
        "SELECT record FROM ocpi_pushes WHERE partner_id = ? AND seq = ?";
    push_head, true,
        "SELECT record FROM ocpi_pushes WHERE partner_id = ? LIMIT ?";
    push_delete, true,
        "DELETE FROM ocpi_pushes WHERE partner_id = ? AND seq = ?";
    push_count, true,
        "SELECT COUNT(*) FROM ocpi_pushes WHERE partner_id = ?";
    push_clear, true,
        "DELETE FROM ocpi_pushes WHERE partner_id = ?";
    push_object_put, true,
        "INSERT INTO ocpi_push_objects (partner_id, object, seq) VALUES (?, ?, ?)";
    push_object_get, true,
        "SELECT seq FROM ocpi_push_objects WHERE partner_id = ? AND object = ?";
    push_object_delete, true,
        "DELETE FROM ocpi_push_objects WHERE partner_id = ? AND object = ?";
    push_objects_clear, true,
        "DELETE FROM ocpi_push_objects WHERE partner_id = ?";

    ocpi_object_put, true,
        "INSERT INTO ocpi_objects (kind, id, record) VALUES (?, ?, ?)";
    ocpi_object_get, true,
        "SELECT record FROM ocpi_objects WHERE kind = ? AND id = ?";
    ocpi_object_entry_put, true,
        "INSERT INTO ocpi_objects_updated (kind, party, updated_ms, id) VALUES (?, ?, ?, ?)";
    ocpi_object_entry_delete, true,
        "DELETE FROM ocpi_objects_updated WHERE kind = ? AND party = ? AND updated_ms = ? AND id = ?";
    ocpi_object_entries_after, true,
        "SELECT updated_ms, id FROM ocpi_objects_updated WHERE kind = ? AND party = ? AND (updated_ms, id) > (?, ?)";
    ocpi_object_entries_count, true,
        "SELECT COUNT(*) FROM ocpi_objects_updated WHERE kind = ? AND party = ? AND updated_ms >= ? AND updated_ms < ?";

    node_renew, true,
        "INSERT INTO cluster_nodes (scope, node_id, url, started_at, stations) VALUES ('nodes', ?, ?, ?, ?) USING TTL ?";
    node_remove, true,
        "DELETE FROM cluster_nodes WHERE scope = 'nodes' AND node_id = ?";
    nodes_live, true,
        "SELECT node_id, url, started_at, stations FROM cluster_nodes WHERE scope = 'nodes'";
    presence_put, true,
        "INSERT INTO station_presence (station_id, node_id, connection) VALUES (?, ?, ?) USING TIMESTAMP ?";
    presence_remove, true,
        "DELETE FROM station_presence USING TIMESTAMP ? WHERE station_id = ?";
    presence_get, true,
        "SELECT node_id, connection FROM station_presence WHERE station_id = ?";

    transaction_get, true,
        "SELECT revision, summary, applied_seq_nos, meter_buckets FROM transactions WHERE station_id = ? AND transaction_id = ?";
    transaction_write, true,
        "UPDATE transactions USING TIMESTAMP ? SET revision = ?, summary = ?, applied_seq_nos = applied_seq_nos + ?, meter_buckets = meter_buckets + ?, digests = digests + ? WHERE station_id = ? AND transaction_id = ?";
    transaction_digests, true,
        "SELECT digests FROM transactions WHERE station_id = ? AND transaction_id = ?";
    station_transaction_put, true,
        "INSERT INTO station_transactions (station_id, transaction_id, summary) VALUES (?, ?, ?) USING TIMESTAMP ?";
    station_transactions_after, true,
        "SELECT summary FROM station_transactions WHERE station_id = ? AND transaction_id > ?";
    meter_value_put, true,
        "INSERT INTO meter_values (station_id, transaction_id, bucket, seq_no, idx, meter_value) VALUES (?, ?, ?, ?, ?, ?)";
    meter_values_of_bucket, true,
        "SELECT seq_no, meter_value FROM meter_values WHERE station_id = ? AND transaction_id = ? AND bucket = ?";

    command_put, true,
        "INSERT INTO station_commands (station_id, command_id, record) VALUES (?, ?, ?)";
    command_get, true,
        "SELECT record FROM station_commands WHERE station_id = ? AND command_id = ?";
    commands_newest, true,
        "SELECT record FROM station_commands WHERE station_id = ? ORDER BY command_id DESC";
    commands_before, true,
        "SELECT record FROM station_commands WHERE station_id = ? AND command_id < ? ORDER BY command_id DESC";
    outbox_insert, true,
        "INSERT INTO station_outbox (station_id, command_id) VALUES (?, ?)";
    outbox_delete, true,
        "DELETE FROM station_outbox WHERE station_id = ? AND command_id = ?";
    outbox_of, true,
        "SELECT command_id FROM station_outbox WHERE station_id = ?";

    batch_put, true,
        "INSERT INTO command_batches (batch_id, record) VALUES (?, ?)";
    batch_get, true,
        "SELECT record FROM command_batches WHERE batch_id = ?";
    batch_member_put, true,
        "INSERT INTO batch_members (batch_id, station_id, command_id) VALUES (?, ?, ?)";
    batch_members_of, true,
        "SELECT station_id, command_id FROM batch_members WHERE batch_id = ?";
    batch_members_after, true,
        "SELECT station_id, command_id FROM batch_members WHERE batch_id = ? AND station_id > ?";

    variable_put, true,
        "INSERT INTO station_variables (station_id, key, record) VALUES (?, ?, ?)";
    variables_of, true,
        "SELECT record FROM station_variables WHERE station_id = ?";
    variables_after, true,
        "SELECT record FROM station_variables WHERE station_id = ? AND key > ?";

    id_block_get, true,
        "SELECT next_id FROM id_blocks WHERE name = ?";
    id_block_create, false,
        "INSERT INTO id_blocks (name, next_id) VALUES (?, ?) IF NOT EXISTS";
    id_block_advance, false,
        "UPDATE id_blocks SET next_id = ? WHERE name = ? IF next_id = ?";
}

/// The name of a prepared statement (its field in [`Statements`]), for the
/// per-statement timing; "other" for one prepared elsewhere (schema checks).
pub fn name_of(statement: &PreparedStatement) -> &'static str {
    static NAMES: std::sync::OnceLock<std::collections::HashMap<&'static str, &'static str>> =
        std::sync::OnceLock::new();
    let names = NAMES.get_or_init(|| TEXTS.iter().map(|(name, _, cql)| (*cql, *name)).collect());
    names
        .get(statement.get_statement())
        .copied()
        .unwrap_or("other")
}

async fn prepare(session: &Session, cql: &str, idempotent: bool) -> StoreResult<PreparedStatement> {
    let mut statement = session
        .prepare(cql)
        .await
        .map_err(|e| StoreError::Backend(format!("ScyllaDB refused to prepare `{cql}`: {e}")))?;
    statement.set_is_idempotent(idempotent);
    Ok(statement)
}

/// A logged batch: its statements are applied all or none, even across
/// partitions (the batch log replays a half-applied one).
fn logged(statements: &[&PreparedStatement]) -> Batch {
    let mut batch = Batch::new(BatchType::Logged);
    for statement in statements {
        batch.append_statement((*statement).clone());
    }
    // Every statement in these batches is an idempotent upsert or delete.
    batch.set_is_idempotent(true);
    batch
}

/// `statement` `times` times in one unlogged batch: for writes to one
/// partition, which such a batch applies atomically and in isolation.
pub fn one_partition(statement: &PreparedStatement, times: usize) -> Batch {
    let mut batch = Batch::new(BatchType::Unlogged);
    for _ in 0..times {
        batch.append_statement(statement.clone());
    }
    batch.set_is_idempotent(statement.get_is_idempotent());
    batch
}

#[cfg(test)]
mod tests {
    use super::TEXTS;

    #[test]
    fn every_read_and_change_names_its_partition() {
        for (name, _, cql) in TEXTS {
            let upper = cql.to_ascii_uppercase();
            assert!(!upper.contains("ALLOW FILTERING"), "{name} filters");
            if !upper.starts_with("INSERT") {
                assert!(upper.contains(" WHERE "), "{name} has no WHERE: a scan");
            }
        }
    }

    #[test]
    fn lightweight_transactions_are_never_retried_blindly() {
        for (name, idempotent, cql) in TEXTS {
            let lwt = cql.contains(" IF ");
            assert!(!(lwt && *idempotent), "{name} is an LWT marked idempotent");
        }
    }
}
