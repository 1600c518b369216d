//! Paging of list endpoints: MaEVe's `?offset=&limit=` (default 20, cap 100)
//! and voltgate's seek cursor `?cursor=`.
//!
//! A full page answers with an `X-Next-Cursor` header: an opaque token that
//! `?cursor=` turns into "start after the last record of that page". A
//! cursor page costs about the same wherever it starts; an `offset` costs
//! reading the records it skips (on ScyllaDB, from every directory bucket),
//! so offsets stop at `MAX_OFFSET`.

use actix_web::HttpResponseBuilder;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;
use utoipa::IntoParams;

use super::error::ApiError;
use super::validate::invalid;
use crate::store::Page;

/// Records returned when `limit` is not given.
pub const DEFAULT_LIMIT: u32 = 20;
/// Most records one call returns; a larger `limit` is capped to it.
pub const MAX_LIMIT: u32 = 100;
/// Largest `offset` served: past it, walk the list with the cursor (an
/// offset costs reading every record it skips, on every request).
pub const MAX_OFFSET: u64 = 10_000;
/// Response header carrying the cursor of the next page.
pub const NEXT_CURSOR_HEADER: &str = "X-Next-Cursor";

/// Paging parameters of a list call.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Records to skip (default 0, at most 10,000), after the cursor when one is given.
    offset: Option<u64>,
    /// Records to return (default 20, at most 100; 0 returns none).
    limit: Option<u32>,
    /// Start after the page that returned this `X-Next-Cursor` value.
    cursor: Option<String>,
}

impl PageQuery {
    /// The window asked for, with the default and the cap applied; 400 when
    /// the cursor is not one this server handed out.
    pub fn page(&self) -> Result<Page, ApiError> {
        let after =
            match &self.cursor {
                None => None,
                Some(cursor) => Some(decode_cursor(cursor).ok_or_else(|| {
                    invalid("cursor", "not a cursor from an X-Next-Cursor header")
                })?),
            };
        let offset = self.offset.unwrap_or(0);
        if offset > MAX_OFFSET {
            return Err(invalid(
                "offset",
                format!(
                    "{offset} is past {MAX_OFFSET}; walk longer lists with ?cursor= (the X-Next-Cursor header of each page)"
                ),
            ));
        }
        Ok(Page {
            offset,
            limit: self.limit.unwrap_or(DEFAULT_LIMIT).min(MAX_LIMIT),
            after,
        })
    }
}

/// Adds `X-Next-Cursor` when the page is full: `last_key` is the list key of
/// its last record.
pub fn with_next_cursor(
    mut response: HttpResponseBuilder,
    page: &Page,
    returned: usize,
    last_key: Option<&str>,
) -> HttpResponseBuilder {
    if let Some(key) = last_key.filter(|_| page.limit > 0 && returned == page.limit as usize) {
        response.insert_header((NEXT_CURSOR_HEADER, URL_SAFE_NO_PAD.encode(key)));
    }
    response
}

fn decode_cursor(cursor: &str) -> Option<String> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    String::from_utf8(bytes).ok().filter(|key| !key.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(cursor: Option<&str>) -> PageQuery {
        PageQuery {
            offset: None,
            limit: Some(500),
            cursor: cursor.map(str::to_owned),
        }
    }

    #[test]
    fn defaults_cap_and_cursor_round_trip() {
        let page = query(None).page().unwrap();
        assert_eq!(page, Page::new(0, MAX_LIMIT));
        let cursor = URL_SAFE_NO_PAD.encode("CS-0042");
        let page = query(Some(&cursor)).page().unwrap();
        assert_eq!(page.after.as_deref(), Some("CS-0042"));
    }

    #[test]
    fn large_offsets_are_refused_in_favour_of_the_cursor() {
        let at = |offset| PageQuery {
            offset: Some(offset),
            limit: None,
            cursor: None,
        };
        assert_eq!(at(MAX_OFFSET).page().unwrap().offset, MAX_OFFSET);
        assert!(at(MAX_OFFSET + 1).page().is_err());
    }

    #[test]
    fn foreign_cursors_are_refused() {
        for bad in ["***", "", "_w"] {
            assert!(query(Some(bad)).page().is_err(), "{bad:?} accepted");
        }
    }
}
