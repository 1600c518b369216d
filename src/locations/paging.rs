//! Locations by `last_updated` in OCPI's paging (`date_from`, `date_to`,
//! `offset`, `limit`), for `/api/v1` and the OCPI Locations sender alike:
//! the query read and checked, one page and its total fetched, and the
//! query of the next page, which carries a seek cursor so that following
//! `Link` costs the same at any depth.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::store::{ocpi_time, Location, Store, StoreError, UpdatedWindow};

/// The list's query: OCPI's window and paging, plus the seek cursor the
/// `Link` header carries.
#[derive(Debug, Default, Deserialize, Serialize, utoipa::IntoParams)]
pub struct ListQuery {
    /// Only locations updated at or after this time (RFC 3339).
    pub date_from: Option<String>,
    /// Only locations updated before this time (RFC 3339).
    pub date_to: Option<String>,
    /// Locations to skip (ignored when `cursor` is given).
    pub offset: Option<u64>,
    /// Most locations in the page (capped by the surface's maximum).
    pub limit: Option<u32>,
    /// Where the previous page ended (from the `Link` header): seeks there.
    pub cursor: Option<String>,
}

/// One page of a list by `last_updated`.
#[derive(Debug)]
pub struct UpdatedPage<T = Location> {
    /// The records, oldest first.
    pub page: Vec<T>,
    /// How many the whole window holds (`X-Total-Count`).
    pub total: u64,
    /// The page size applied (`X-Limit`).
    pub limit: u32,
    /// The query string of the next page, when this one was full.
    pub next: Option<String>,
}

/// A record listed by `last_updated`: where it sorts.
pub trait Stamped {
    /// Its `last_updated` in milliseconds and its id.
    fn stamp(&self) -> (i64, &str);
}

impl Stamped for Location {
    fn stamp(&self) -> (i64, &str) {
        (
            self.last_updated.map_or(0, |t| t.timestamp_millis()),
            &self.id,
        )
    }
}

impl Stamped for crate::store::OcpiObject {
    fn stamp(&self) -> (i64, &str) {
        (self.last_updated.timestamp_millis(), &self.id)
    }
}

impl<T> UpdatedPage<T> {
    /// OCPI's paging headers for this page of the list at `list_url`:
    /// `X-Total-Count`, `X-Limit`, and `Link` rel="next" when there is more.
    pub fn headers(&self, list_url: &str) -> Vec<(&'static str, String)> {
        let mut headers = vec![
            ("X-Total-Count", self.total.to_string()),
            ("X-Limit", self.limit.to_string()),
        ];
        if let Some(next) = &self.next {
            headers.push(("Link", format!("<{list_url}?{next}>; rel=\"next\"")));
        }
        headers
    }
}

/// Why a list query cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    /// A parameter is wrong; the text names it.
    #[error("{0}")]
    Invalid(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Page sizes of one surface.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Without `limit`.
    pub default: u32,
    /// At most.
    pub max: u32,
}

fn time(field: &str, text: &Option<String>) -> Result<Option<DateTime<Utc>>, ListError> {
    text.as_deref()
        .map(|t| {
            DateTime::parse_from_rfc3339(t)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| {
                    ListError::Invalid(format!(
                        "invalid parameter {field}: {t:?} is not an RFC 3339 time ({e})"
                    ))
                })
        })
        .transpose()
}

fn cursor(text: &Option<String>) -> Result<Option<(DateTime<Utc>, String)>, ListError> {
    let Some(text) = text else {
        return Ok(None);
    };
    let bad = || {
        ListError::Invalid(format!(
            "invalid parameter cursor: {text:?} is not a cursor from a Link header"
        ))
    };
    let (ms, id) = text.split_once('.').ok_or_else(bad)?;
    let at = ms
        .parse()
        .ok()
        .and_then(DateTime::from_timestamp_millis)
        .ok_or_else(bad)?;
    Ok(Some((at, id.to_owned())))
}

/// The page `query` asks for (only published locations when
/// `published_only`), its total and the next page's query.
pub async fn page_by_updated(
    store: &dyn Store,
    query: &ListQuery,
    limits: Limits,
    published_only: bool,
) -> Result<UpdatedPage, ListError> {
    page_of(
        query,
        limits,
        |window| {
            store.locations_updated(UpdatedWindow {
                published_only,
                ..window
            })
        },
        |from, to| store.count_locations_updated(from, to, published_only),
    )
    .await
}

/// The page `query` asks for of any list by `last_updated`: `fetch` reads
/// a window, `count` the total between two times.
pub async fn page_of<T, Fetch, Fetched, Count, Counted>(
    query: &ListQuery,
    limits: Limits,
    fetch: Fetch,
    count: Count,
) -> Result<UpdatedPage<T>, ListError>
where
    T: Stamped,
    Fetch: FnOnce(UpdatedWindow) -> Fetched,
    Fetched: std::future::Future<Output = Result<Vec<T>, StoreError>>,
    Count: FnOnce(Option<DateTime<Utc>>, Option<DateTime<Utc>>) -> Counted,
    Counted: std::future::Future<Output = Result<u64, StoreError>>,
{
    let from = time("date_from", &query.date_from)?;
    let to = time("date_to", &query.date_to)?;
    if let (Some(from), Some(to)) = (from, to) {
        if from > to {
            return Err(ListError::Invalid(
                "invalid parameters: date_from is after date_to".into(),
            ));
        }
    }
    let limit = query.limit.unwrap_or(limits.default).min(limits.max);
    if limit == 0 {
        return Err(ListError::Invalid(
            "invalid parameter limit: must be 1 or more".into(),
        ));
    }
    let after = cursor(&query.cursor)?;
    let offset = query.offset.unwrap_or(0);
    let window = UpdatedWindow {
        from,
        to,
        offset: if after.is_some() { 0 } else { offset },
        after,
        limit,
        published_only: false,
    };
    let (page, total) = futures_util::try_join!(fetch(window), count(from, to))?;
    let next = (page.len() == limit as usize)
        .then(|| page.last())
        .flatten()
        .map(|last| {
            let (millis, id) = last.stamp();
            let next = ListQuery {
                date_from: from.as_ref().map(ocpi_time::format),
                date_to: to.as_ref().map(ocpi_time::format),
                offset: Some(offset + u64::from(limit)),
                limit: Some(limit),
                cursor: Some(format!("{millis}.{id}")),
            };
            serde_urlencoded::to_string(&next).unwrap_or_default()
        });
    Ok(UpdatedPage {
        page,
        total,
        limit,
        next,
    })
}
