//! `POST /cs/{id}/remote-stop` `{transactionId}` → 1.6
//! `RemoteStopTransaction` (integer ids), 2.0.1 `RequestStopTransaction`.

use serde::Deserialize;
use serde_json::{json, Value};

use super::{Operation, Untranslatable};
use crate::ocpp::Version;

/// The remote stop body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RemoteStop {
    /// The transaction, as voltgate lists it (a number on 1.6 stations).
    pub transaction_id: String,
}

impl Operation for RemoteStop {
    const NAME: &'static str = "remote-stop";

    fn translate(
        &self,
        version: Version,
        _: &mut dyn FnMut() -> i32,
    ) -> Result<(&'static str, Value), Untranslatable> {
        match version {
            Version::V16 => {
                let id: i32 = self.transaction_id.parse().map_err(|_| {
                    Untranslatable(format!(
                        "transactionId {:?} is not an OCPP 1.6 transaction id (an integer)",
                        self.transaction_id
                    ))
                })?;
                Ok(("RemoteStopTransaction", json!({ "transactionId": id })))
            }
            Version::V201 => Ok((
                "RequestStopTransaction",
                json!({ "transactionId": self.transaction_id }),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::both;
    use super::*;

    #[test]
    fn stops_translate_per_version() {
        let [v16, v201] = both::<RemoteStop>(json!({"transactionId": "42"}));
        assert_eq!(v16.unwrap().payload, json!({"transactionId": 42}));
        assert_eq!(v201.unwrap().payload, json!({"transactionId": "42"}));
        let [v16, _] = both::<RemoteStop>(json!({"transactionId": "a-b"}));
        assert!(v16.unwrap_err().0.contains("integer"));
    }
}
