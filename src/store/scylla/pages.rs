//! Rows of a query read a page at a time, only as far as they are consumed:
//! each page is one request that carries the driver's paging state of the
//! page before. (The driver's own row stream prefetches pages in the
//! background; a list that stops after a few rows must not pay for that.)

use std::collections::VecDeque;

use scylla::deserialize::row::DeserializeRow;
use scylla::response::{PagingState, PagingStateResponse};
use scylla::serialize::row::SerializeRow;
use scylla::statement::bound::BoundStatement;
use scylla::statement::prepared::PreparedStatement;

use super::{db, ScyllaStore};
use crate::store::StoreResult;

/// Most rows asked for in one page.
pub const MOST_ROWS_PER_PAGE: u64 = 1_000;

/// A query's rows, fetched page by page on demand.
pub struct Pages<R> {
    bound: BoundStatement,
    /// Where the next page starts; `None` once the last page was read.
    next_page: Option<PagingState>,
    buffered: VecDeque<R>,
}

impl<R> Pages<R>
where
    R: for<'frame> DeserializeRow<'frame, 'frame>,
{
    /// The rows of `statement` with `values`, `page_size` rows a request.
    pub fn new(
        statement: &PreparedStatement,
        values: &impl SerializeRow,
        page_size: u64,
    ) -> StoreResult<Pages<R>> {
        let mut bound = statement.clone().bind(values).map_err(db)?;
        bound.set_page_size(page_size.clamp(1, MOST_ROWS_PER_PAGE) as i32);
        Ok(Pages {
            bound,
            next_page: Some(PagingState::start()),
            buffered: VecDeque::new(),
        })
    }

    /// The next row, fetching the next page when the buffered ones are used up.
    pub async fn next(&mut self, store: &ScyllaStore) -> StoreResult<Option<R>> {
        loop {
            if let Some(row) = self.buffered.pop_front() {
                return Ok(Some(row));
            }
            // A page may hold fewer rows than asked (even none) and still
            // not be the last: go on until the paging state says so.
            let Some(state) = self.next_page.take() else {
                return Ok(None);
            };
            store.refuse_when_closed()?;
            let started = std::time::Instant::now();
            let fetched = store
                .session
                .execute_bound_single_page(&self.bound, state)
                .await;
            crate::metrics::scylla_statement(
                super::statements::name_of(self.bound.prepared()),
                started.elapsed(),
            );
            let (result, response) = fetched.map_err(db)?;
            self.next_page = match response {
                PagingStateResponse::HasMorePages { state } => Some(state),
                PagingStateResponse::NoMorePages => None,
            };
            let rows = result.into_rows_result().map_err(db)?;
            for row in rows.rows::<R>().map_err(db)? {
                self.buffered.push_back(row.map_err(db)?);
            }
        }
    }
}
