//! `POST /cs/{id}/clear-cache` (no body) → `ClearCache` on both versions.

use serde::Deserialize;
use serde_json::{json, Value};

use super::{Operation, Untranslatable};
use crate::ocpp::Version;

/// ClearCache takes nothing.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClearCache {}

impl Operation for ClearCache {
    const NAME: &'static str = "clear-cache";

    fn translate(
        &self,
        _: Version,
        _: &mut dyn FnMut() -> i32,
    ) -> Result<(&'static str, Value), Untranslatable> {
        Ok(("ClearCache", json!({})))
    }
}
