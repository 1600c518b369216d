//! `POST /cs/{id}/local-list` `{update: Full|Differential, tokens?}` →
//! `SendLocalList`. The API works out the entries (from the token store when
//! no tokens are given, and the differential against what the station was
//! last sent) and the list version; this module writes the CALL.

use serde::Deserialize;
use serde_json::{json, Value};

use super::{id_token, Operation, Untranslatable};
use crate::ocpp::Version;

/// Full replaces the station's list; Differential changes entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
pub enum UpdateType {
    /// The list is exactly these entries.
    Full,
    /// These entries change; one without a status is removed.
    Differential,
}

impl UpdateType {
    /// The OCPP name.
    pub fn name(self) -> &'static str {
        match self {
            UpdateType::Full => "Full",
            UpdateType::Differential => "Differential",
        }
    }
}

/// One entry of a local list.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Entry {
    /// The token (1.6 idTag, at most 20 characters).
    pub id_token: String,
    /// 2.0.1 IdTokenType (default Central).
    pub id_token_type: Option<String>,
    /// Accepted, Blocked, Expired, Invalid, ...; none in a Differential
    /// update removes the entry.
    pub status: Option<String>,
}

/// A SendLocalList, ready to write.
#[derive(Debug, Clone, Deserialize)]
pub struct LocalList {
    /// Full or Differential.
    pub update: UpdateType,
    /// The list version after this update.
    pub version: i64,
    /// The entries.
    pub entries: Vec<Entry>,
}

impl Operation for LocalList {
    const NAME: &'static str = "local-list";

    fn translate(
        &self,
        version: Version,
        _: &mut dyn FnMut() -> i32,
    ) -> Result<(&'static str, Value), Untranslatable> {
        if self.update == UpdateType::Full && self.entries.iter().any(|e| e.status.is_none()) {
            return Err(Untranslatable(
                "a Full list gives every entry a status".into(),
            ));
        }
        let entries: Vec<Value> = self
            .entries
            .iter()
            .map(|entry| match version {
                Version::V16 => {
                    let mut item = json!({ "idTag": entry.id_token });
                    if let Some(status) = &entry.status {
                        item["idTagInfo"] = json!({ "status": status });
                    }
                    item
                }
                Version::V201 => {
                    let mut item =
                        json!({ "idToken": id_token(&entry.id_token, entry.id_token_type.as_deref()) });
                    if let Some(status) = &entry.status {
                        item["idTokenInfo"] = json!({ "status": status });
                    }
                    item
                }
            })
            .collect();
        let version_field = match version {
            Version::V16 => "listVersion",
            Version::V201 => "versionNumber",
        };
        let mut payload = json!({ version_field: self.version, "updateType": self.update.name() });
        if !entries.is_empty() {
            payload["localAuthorizationList"] = Value::Array(entries);
        }
        Ok(("SendLocalList", payload))
    }
}

/// The list version a payload of SendLocalList carries.
pub fn version_of(payload: &Value) -> Option<i64> {
    payload["listVersion"]
        .as_i64()
        .or_else(|| payload["versionNumber"].as_i64())
}

/// The (token, status) entries a SendLocalList payload carries; a `None`
/// status removes the token.
pub fn entries_of(payload: &Value) -> Vec<(String, Option<String>)> {
    payload["localAuthorizationList"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|item| {
            let token = item["idTag"]
                .as_str()
                .or_else(|| item["idToken"]["idToken"].as_str())?;
            let status = item["idTagInfo"]["status"]
                .as_str()
                .or_else(|| item["idTokenInfo"]["status"].as_str());
            Some((token.to_owned(), status.map(str::to_owned)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::plan;
    use super::*;

    fn list(update: UpdateType, entries: &[(&str, Option<&str>)]) -> LocalList {
        LocalList {
            update,
            version: 4,
            entries: entries
                .iter()
                .map(|(token, status)| Entry {
                    id_token: (*token).into(),
                    id_token_type: None,
                    status: status.map(str::to_owned),
                })
                .collect(),
        }
    }

    #[test]
    fn lists_translate_per_version_and_read_back() {
        let full = list(
            UpdateType::Full,
            &[("TAG1", Some("Accepted")), ("TAG2", Some("Blocked"))],
        );
        let v16 = plan(&full, Version::V16, &mut || 1).unwrap();
        assert_eq!(v16.payload["listVersion"], 4);
        assert_eq!(
            v16.payload["localAuthorizationList"][1],
            json!({"idTag": "TAG2", "idTagInfo": {"status": "Blocked"}})
        );
        let v201 = plan(&full, Version::V201, &mut || 1).unwrap();
        assert_eq!(v201.payload["versionNumber"], 4);
        assert_eq!(entries_of(&v201.payload), entries_of(&v16.payload));
        assert_eq!(version_of(&v201.payload), Some(4));
        let removal = list(UpdateType::Differential, &[("TAG1", None)]);
        let v16 = plan(&removal, Version::V16, &mut || 1).unwrap();
        assert_eq!(entries_of(&v16.payload), vec![("TAG1".to_owned(), None)]);
        assert!(plan(
            &list(UpdateType::Full, &[("TAG1", None)]),
            Version::V16,
            &mut || 1
        )
        .is_err());
        let empty_full = plan(&list(UpdateType::Full, &[]), Version::V201, &mut || 1).unwrap();
        assert_eq!(
            empty_full.payload,
            json!({"versionNumber": 4, "updateType": "Full"})
        );
    }
}
