//! Keyspace and tables at start: creates what is missing from
//! `schema/scylla.cql`, then checks that what exists is what this build
//! reads and writes, and refuses an incompatible keyspace with the reason.

use std::collections::BTreeMap;

use scylla::client::session::Session;

use super::settings::ScyllaSettings;
use crate::store::{StoreError, StoreResult};

/// The data model of `schema/scylla.cql`, as this build reads and writes it.
pub const SCHEMA_CQL: &str = include_str!("../../../schema/scylla.cql");
/// Version of that model; a keyspace written by another version is refused.
pub const SCHEMA_VERSION: i32 = 1;
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
    check_version(session, keyspace).await?;
    for statement in statements(SCHEMA_CQL) {
        ddl(session, &statement).await?;
    }
    check_columns(session, keyspace).await?;
    session
        .query_unpaged(
            "INSERT INTO schema_version (component, model_version) VALUES (?, ?)",
            (COMPONENT, SCHEMA_VERSION),
        )
        .await
        .map_err(|e| refused(format!("cannot record the schema version: {e}")))?;
    Ok(())
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

/// A keyspace that says it holds another version of the model is refused
/// before anything is created in it.
async fn check_version(session: &Session, keyspace: &str) -> StoreResult<()> {
    let exists = session
        .query_unpaged(
            "SELECT table_name FROM system_schema.tables WHERE keyspace_name = ? AND table_name = 'schema_version'",
            (keyspace,),
        )
        .await
        .map_err(|e| refused(format!("cannot read the schema of {keyspace}: {e}")))?
        .into_rows_result()
        .map_err(|e| refused(format!("cannot read the schema of {keyspace}: {e}")))?
        .rows_num()
        > 0;
    if !exists {
        return Ok(());
    }
    let version = session
        .query_unpaged(
            "SELECT model_version FROM schema_version WHERE component = ?",
            (COMPONENT,),
        )
        .await
        .map_err(|e| incompatible(keyspace, format!("its schema_version cannot be read: {e}")))?
        .into_rows_result()
        .map_err(|e| incompatible(keyspace, format!("its schema_version cannot be read: {e}")))?
        .maybe_first_row::<(Option<i32>,)>()
        .map_err(|e| incompatible(keyspace, format!("its schema_version cannot be read: {e}")))?;
    match version.and_then(|(v,)| v) {
        None | Some(SCHEMA_VERSION) => Ok(()),
        Some(other) => Err(incompatible(
            keyspace,
            format!(
                "it holds data model version {other}, this voltgate reads version {SCHEMA_VERSION}"
            ),
        )),
    }
}

/// Every column of the model must exist with its type (extra columns of
/// other tools are left alone).
async fn check_columns(session: &Session, keyspace: &str) -> StoreResult<()> {
    let found = session
        .query_unpaged(
            "SELECT table_name, column_name, type FROM system_schema.columns WHERE keyspace_name = ?",
            (keyspace,),
        )
        .await
        .map_err(|e| refused(format!("cannot read the columns of {keyspace}: {e}")))?
        .into_rows_result()
        .map_err(|e| refused(format!("cannot read the columns of {keyspace}: {e}")))?;
    let mut actual = BTreeMap::new();
    let rows = found
        .rows::<(String, String, String)>()
        .map_err(|e| refused(format!("cannot read the columns of {keyspace}: {e}")))?;
    for row in rows {
        let (table, column, kind) =
            row.map_err(|e| refused(format!("cannot read the columns of {keyspace}: {e}")))?;
        actual.insert((table, column), kind);
    }
    let mut problems = Vec::new();
    for (table, columns) in expected_columns(SCHEMA_CQL) {
        for (column, kind) in columns {
            match actual.get(&(table.clone(), column.clone())) {
                None => problems.push(format!("{table}.{column} is missing")),
                Some(found) if normalize(found) != normalize(&kind) => {
                    problems.push(format!("{table}.{column} is {found}, expected {kind}"))
                }
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

/// Types as system_schema spells them: `set<bigint>` may come back frozen
/// or with spaces on other versions.
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

/// Table → [(column, type)] of every CREATE TABLE in the file. The file is
/// ours: one column per line, `name type,`, then PRIMARY KEY.
pub fn expected_columns(cql: &str) -> Vec<(String, Vec<(String, String)>)> {
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
        let columns = lines
            .take_while(|line| !line.starts_with("PRIMARY KEY"))
            .filter_map(|line| {
                let (name, kind) = line.trim_end_matches(',').split_once(' ')?;
                Some((name.to_owned(), kind.trim().to_owned()))
            })
            .collect();
        tables.push((table.to_owned(), columns));
    }
    tables
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
        let transactions = &tables.iter().find(|(t, _)| t == "transactions").unwrap().1;
        assert!(transactions.contains(&("applied_seq_nos".into(), "set<bigint>".into())));
        for (table, columns) in &tables {
            assert!(!columns.is_empty(), "{table} has no columns");
            for (column, kind) in columns {
                assert!(
                    !kind.is_empty() && !column.contains(' '),
                    "{table}.{column}"
                );
            }
        }
        assert_eq!(statements(SCHEMA_CQL).len(), tables.len());
    }
}
