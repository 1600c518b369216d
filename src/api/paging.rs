//! `?offset=&limit=` on list endpoints: MaEVe's defaults (20) and cap (100).

use serde::Deserialize;
use utoipa::IntoParams;

use crate::store::Page;

/// Records returned when `limit` is not given.
pub const DEFAULT_LIMIT: u32 = 20;
/// Most records one call returns; a larger `limit` is capped to it.
pub const MAX_LIMIT: u32 = 100;

/// Paging parameters of a list call.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Records to skip (default 0).
    offset: Option<u64>,
    /// Records to return (default 20, at most 100; 0 returns none).
    limit: Option<u32>,
}

impl PageQuery {
    /// The window asked for, with the default and the cap applied.
    pub fn page(&self) -> Page {
        Page {
            offset: self.offset.unwrap_or(0),
            limit: self.limit.unwrap_or(DEFAULT_LIMIT).min(MAX_LIMIT),
        }
    }
}
