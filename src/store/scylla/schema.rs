//! Keyspace and tables at start: creates what is missing from
//! `schema/scylla.cql`, then checks that what exists is what this build
//! reads and writes, and refuses an incompatible keyspace with the reason.

use std::collections::BTreeMap;

use scylla::client::session::Session;

use super::settings::ScyllaSettings;
use crate::store::{StoreError, StoreResult};

/// The data model of `schema/scylla.cql`, as this build reads and writes it.
pub const SCHEMA_CQL: &str = include_str!("../../../schema/scylla.cql");
/// Version of that model. A keyspace of an older version is upgraded in
/// place (new tables and columns; the old work queues become commands);
/// one of a newer version is refused.
pub const SCHEMA_VERSION: i32 = 8;
/// The first model whose MaEVe work is commands.
const COMMANDS_CARRY_WORK: i32 = 3;
/// The row of `schema_version` this build owns.
const COMPONENT: &str = "voltgate";

/// Creates the keyspace and tables when missing and checks the result.
pub async fn ensure(session: &Session, settings: &ScyllaSettings) -> StoreResult<()> {
    let keyspace = &settings.keyspace;
    let create = format!(
        "CREATE KEYSPACE IF NOT EXISTS {keyspace} WITH replication = {}",
        settings.replication.to_cql()
    );
    ddl(session, &create).await?;
    session
        .use_keyspace(keyspace.as_str(), false)
        .await
        .map_err(|e| refused(format!("cannot use keyspace {keyspace}: {e}")))?;
    let found = check_version(session, keyspace).await?;
    // A keyspace that already has the whole model needs no DDL (each
    // statement waits for schema agreement across the cluster).
    if check_columns(session, keyspace).await.is_err() {
        for statement in statements(SCHEMA_CQL) {
            ddl(session, &statement).await?;
        }
        // Only an older model is upgraded: a keyspace of this model that
        // lacks a column was changed by someone else, and is refused.
        if found.is_some_and(|version| version < SCHEMA_VERSION) {
            add_missing_columns(session, keyspace).await?;
        }
        check_columns(session, keyspace).await?;
    }
    if found.is_some_and(|version| version < COMMANDS_CARRY_WORK) {
        let converted = super::legacy::convert(session, keyspace).await?;
        tracing::info!(
            commands = converted,
            "old work queues converted into commands"
        );
    }
    session
        .query_unpaged(
            "INSERT INTO schema_version (component, model_version) VALUES (?, ?)",
            (COMPONENT, SCHEMA_VERSION),
        )
        .await
        .map_err(|e| refused(format!("cannot record the schema version: {e}")))?;
    Ok(())
}

/// Whether `keyspace` holds `table` (the conversions of older models ask
/// before reading a table the current model no longer has).
pub(super) async fn table_exists(
    session: &Session,
    keyspace: &str,
    table: &str,
) -> StoreResult<bool> {
    let failed = |e: &dyn std::fmt::Display| {
        StoreError::Backend(format!(
            "cannot tell whether table {keyspace}.{table} exists: {e}"
        ))
    };
    let rows = session
        .query_unpaged(
            "SELECT table_name FROM system_schema.tables WHERE keyspace_name = ? AND table_name = ?",
            (keyspace, table),
        )
        .await
        .map_err(|e| failed(&e))?
        .into_rows_result()
        .map_err(|e| failed(&e))?;
    Ok(rows.rows_num() > 0)
}

/// Drops the keyspace (tests: each run gets a fresh one).
pub async fn drop_keyspace(session: &Session, keyspace: &str) -> StoreResult<()> {
    ddl(session, &format!("DROP KEYSPACE IF EXISTS {keyspace}")).await
}

async fn ddl(session: &Session, statement: &str) -> StoreResult<()> {
    let first_line = statement.lines().next().unwrap_or_default();
    session
        .query_unpaged(statement, ())
        .await
        .map_err(|e| refused(format!("schema statement `{first_line}` failed: {e}")))?;
    Ok(())
}

/// A keyspace that says it holds a newer version of the model is refused
/// before anything is created in it; the version found is returned.
async fn check_version(session: &Session, keyspace: &str) -> StoreResult<Option<i32>> {
    let unreadable =
        |e: &dyn std::fmt::Display| refused(format!("cannot read the schema of {keyspace}: {e}"));
    let exists = session
        .query_unpaged(
            "SELECT table_name FROM system_schema.tables WHERE keyspace_name = ? AND table_name = 'schema_version'",
            (keyspace,),
        )
        .await
        .map_err(|e| unreadable(&e))?
        .into_rows_result()
        .map_err(|e| unreadable(&e))?
        .rows_num()
        > 0;
    if !exists {
        return Ok(None);
    }
    let no_version = |e: &dyn std::fmt::Display| {
        incompatible(keyspace, format!("its schema_version cannot be read: {e}"))
    };
    let version = session
        .query_unpaged(
            "SELECT model_version FROM schema_version WHERE component = ?",
            (COMPONENT,),
        )
        .await
        .map_err(|e| no_version(&e))?
        .into_rows_result()
        .map_err(|e| no_version(&e))?
        .maybe_first_row::<(Option<i32>,)>()
        .map_err(|e| no_version(&e))?;
    match version.and_then(|(v,)| v) {
        None => Ok(None),
        Some(older) if older < SCHEMA_VERSION => {
            tracing::info!(
                keyspace,
                from = older,
                to = SCHEMA_VERSION,
                "upgrading the keyspace's data model in place"
            );
            Ok(Some(older))
        }
        Some(SCHEMA_VERSION) => Ok(Some(SCHEMA_VERSION)),
        Some(other) => Err(incompatible(
            keyspace,
            format!(
                "it holds data model version {other}, newer than the version {SCHEMA_VERSION} this voltgate reads"
            ),
        )),
    }
}

/// The keyspace's columns: (table, column) → (CQL type, place in the key).
async fn actual_columns(
    session: &Session,
    keyspace: &str,
) -> StoreResult<BTreeMap<(String, String), (String, Role)>> {
    let unreadable =
        |e: &dyn std::fmt::Display| refused(format!("cannot read the columns of {keyspace}: {e}"));
    let found = session
        .query_unpaged(
            "SELECT table_name, column_name, type, kind, position, clustering_order FROM system_schema.columns WHERE keyspace_name = ?",
            (keyspace,),
        )
        .await
        .map_err(|e| unreadable(&e))?
        .into_rows_result()
        .map_err(|e| unreadable(&e))?;
    let mut actual = BTreeMap::new();
    let rows = found
        .rows::<(String, String, String, String, i32, String)>()
        .map_err(|e| unreadable(&e))?;
    for row in rows {
        let (table, column, kind, role, position, order) = row.map_err(|e| unreadable(&e))?;
        let role = match role.as_str() {
            "partition_key" => Role::Partition(position),
            "clustering" if order.eq_ignore_ascii_case("asc") => Role::Clustering(position),
            "clustering" => Role::DescendingClustering,
            _ => Role::Regular,
        };
        actual.insert((table, column), (kind, role));
    }
    Ok(actual)
}

/// Adds the columns a newer model gave existing tables (`ALTER TABLE ...
/// ADD`): the additive half of an in-place upgrade (CREATE TABLE IF NOT
/// EXISTS is the other). Key columns cannot be added; the check after it
/// refuses a keyspace that lacks one.
async fn add_missing_columns(session: &Session, keyspace: &str) -> StoreResult<()> {
    let actual = actual_columns(session, keyspace).await?;
    for (table, columns) in expected_columns(SCHEMA_CQL) {
        let exists = actual.keys().any(|(t, _)| *t == table);
        if !exists {
            continue;
        }
        for column in columns {
            let missing = !actual.contains_key(&(table.clone(), column.name.clone()));
            if missing && column.role == Role::Regular {
                tracing::info!(
                    keyspace,
                    table,
                    column = column.name,
                    "adding a column of the newer model"
                );
                ddl(
                    session,
                    &format!("ALTER TABLE {table} ADD {} {}", column.name, column.kind),
                )
                .await?;
            }
        }
    }
    Ok(())
}

/// Every column of the model must exist with its type (extra columns of
/// other tools are left alone).
async fn check_columns(session: &Session, keyspace: &str) -> StoreResult<()> {
    let actual = actual_columns(session, keyspace).await?;
    let mut problems = Vec::new();
    for (table, columns) in expected_columns(SCHEMA_CQL) {
        for column in columns {
            let name = &column.name;
            match actual.get(&(table.clone(), name.clone())) {
                None => problems.push(format!("{table}.{name} is missing")),
                Some((found, _)) if normalize(found) != normalize(&column.kind) => problems.push(
                    format!("{table}.{name} is {found}, expected {}", column.kind),
                ),
                Some((_, role)) if *role != column.role => problems.push(format!(
                    "{table}.{name} is {role:?} in the key, expected {:?}",
                    column.role
                )),
                Some(_) => {}
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(incompatible(keyspace, problems.join("; ")))
    }
}

/// Types compared without spaces or case (system_schema's spelling varies
/// between versions).
fn normalize(kind: &str) -> String {
    kind.chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase()
}

fn refused(why: String) -> StoreError {
    StoreError::Backend(format!("ScyllaDB: {why}"))
}

fn incompatible(keyspace: &str, why: String) -> StoreError {
    refused(format!(
        "keyspace {keyspace} is not compatible with this voltgate: {why}. \
         Use another --scylla-keyspace, or migrate the keyspace"
    ))
}

/// The statements of a CQL file: comments dropped, split at `;`.
pub fn statements(cql: &str) -> Vec<String> {
    let without_comments: Vec<&str> = cql
        .lines()
        .map(|line| line.split("--").next().unwrap_or_default())
        .collect();
    without_comments
        .join("\n")
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A column's place in its table's primary key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Part of the partition key, at this position.
    Partition(i32),
    /// A clustering column in ascending order, at this position.
    Clustering(i32),
    /// A clustering column in descending order (the model has none).
    DescendingClustering,
    /// Not in the key.
    Regular,
}

/// A column the model declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Its name.
    pub name: String,
    /// Its CQL type.
    pub kind: String,
    /// Its place in the primary key.
    pub role: Role,
}

/// Table → columns of every CREATE TABLE in the file. The file is ours: one
/// column per line, `name type,`, then `PRIMARY KEY (...)` (partition key
/// columns in parentheses when there are several or clustering columns).
pub fn expected_columns(cql: &str) -> Vec<(String, Vec<Column>)> {
    let mut tables = Vec::new();
    for statement in statements(cql) {
        let mut lines = statement.lines().map(str::trim);
        let Some(head) = lines.next() else { continue };
        let Some(table) = head
            .strip_prefix("CREATE TABLE IF NOT EXISTS ")
            .and_then(|rest| rest.split_whitespace().next())
        else {
            continue;
        };
        let mut columns = Vec::new();
        let mut roles = Vec::new();
        for line in lines {
            if let Some(key) = line.strip_prefix("PRIMARY KEY") {
                roles = key_roles(key);
                break;
            }
            if let Some((name, kind)) = line.trim_end_matches(',').split_once(' ') {
                columns.push(Column {
                    name: name.to_owned(),
                    kind: kind.trim().to_owned(),
                    role: Role::Regular,
                });
            }
        }
        for column in &mut columns {
            if let Some((_, role)) = roles.iter().find(|(name, _)| *name == column.name) {
                column.role = *role;
            }
        }
        tables.push((table.to_owned(), columns));
    }
    tables
}

/// The roles named by `((a, b), c, d)` or `(a)` (the text after PRIMARY KEY).
fn key_roles(key: &str) -> Vec<(String, Role)> {
    let key = key.trim().trim_end_matches(',').trim();
    let inner = key
        .strip_prefix('(')
        .and_then(|k| k.strip_suffix(')'))
        .unwrap_or(key)
        .trim();
    let (partition, clustering) = match inner.strip_prefix('(') {
        Some(rest) => {
            let (partition, after) = rest.split_once(')').unwrap_or((rest, ""));
            (
                partition.to_owned(),
                after.trim_start_matches(',').to_owned(),
            )
        }
        None => match inner.split_once(',') {
            Some((first, rest)) => (first.to_owned(), rest.to_owned()),
            None => (inner.to_owned(), String::new()),
        },
    };
    let names = |list: &str| -> Vec<String> {
        list.split(',')
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty())
            .collect()
    };
    let mut roles = Vec::new();
    for (i, name) in names(&partition).into_iter().enumerate() {
        roles.push((name, Role::Partition(i as i32)));
    }
    for (i, name) in names(&clustering).into_iter().enumerate() {
        roles.push((name, Role::Clustering(i as i32)));
    }
    roles
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_file_parses_into_tables_and_typed_columns() {
        let tables = expected_columns(SCHEMA_CQL);
        let names: Vec<&str> = tables.iter().map(|(t, _)| t.as_str()).collect();
        for table in [
            "stations",
            "directory",
            "transactions",
            "meter_values",
            "schema_version",
        ] {
            assert!(names.contains(&table), "{table} missing from {names:?}");
        }
        let columns = |table: &str| &tables.iter().find(|(t, _)| t == table).unwrap().1;
        let column = |table: &str, name: &str| {
            columns(table)
                .iter()
                .find(|c| c.name == name)
                .cloned()
                .unwrap_or_else(|| panic!("{table}.{name} missing"))
        };
        assert_eq!(
            column("transactions", "applied_seq_nos").kind,
            "set<bigint>"
        );
        assert_eq!(
            column("transactions", "transaction_id").role,
            Role::Partition(1)
        );
        assert_eq!(column("stations", "id").role, Role::Partition(0));
        assert_eq!(column("meter_values", "bucket").role, Role::Partition(2));
        assert_eq!(column("meter_values", "idx").role, Role::Clustering(1));
        assert_eq!(
            column("station_commands", "command_id").role,
            Role::Clustering(0)
        );
        assert_eq!(column("station_commands", "record").role, Role::Regular);
        for (table, columns) in &tables {
            assert!(
                columns.iter().any(|c| c.role == Role::Partition(0)),
                "{table} has no partition key"
            );
            for c in columns {
                assert!(
                    !c.kind.is_empty() && !c.name.contains(' '),
                    "{table}.{}",
                    c.name
                );
            }
        }
        assert_eq!(statements(SCHEMA_CQL).len(), tables.len());
    }
}
