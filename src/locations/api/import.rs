//! `POST /api/v1/locations/import`: a CSV upload (`text/csv` body, or
//! `multipart/form-data` with the file in field `file`) read as it streams
//! in; locations are written while the rest arrives, a bounded number at a
//! time. The answer counts what was created and updated and lists each
//! rejected row with its line and reason.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use futures_util::stream::FuturesUnordered;
use futures_util::{Stream, StreamExt, TryStreamExt};
use serde::Serialize;

use super::envelope::{success, V1Error};
use crate::locations::import::{id_of, Group, Grouper, Header, Records, Row};
use crate::locations::{Changed, Failure, Locations};

/// Locations written at once.
const WRITES_IN_FLIGHT: usize = 32;
/// Rejected rows listed in the answer (all are counted).
const MOST_LISTED: usize = 10_000;

/// A rejected row.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Rejected {
    /// Its line (the header is line 1).
    pub line: u64,
    /// Why.
    pub reason: String,
}

/// What an import did.
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct ImportReport {
    /// Locations created.
    pub created: u64,
    /// Locations updated.
    pub updated: u64,
    /// Rejected rows (the first 10,000).
    pub rejected: Vec<Rejected>,
    /// All rejected rows.
    pub rejected_total: u64,
}

impl ImportReport {
    fn reject(&mut self, line: u64, reason: String) {
        self.rejected_total += 1;
        if self.rejected.len() < MOST_LISTED {
            self.rejected.push(Rejected { line, reason });
        }
    }
}

type Write =
    std::pin::Pin<Box<dyn std::future::Future<Output = (Group, Result<Changed, Failure>)>>>;

/// The import in progress.
struct Importer {
    locations: Locations,
    parser: Records,
    header: Option<Header>,
    grouper: Grouper,
    writes: FuturesUnordered<Write>,
    report: ImportReport,
}

impl Importer {
    async fn feed(&mut self, bytes: &[u8]) -> Result<(), V1Error> {
        let mut records = Vec::new();
        self.parser.feed(bytes, &mut records);
        for (line, fields) in records {
            let Some(header) = &self.header else {
                let fields =
                    fields.ok_or_else(|| V1Error::invalid("the CSV header is too long"))?;
                let header = Header::read(&fields)
                    .map_err(|e| V1Error::invalid(format!("invalid CSV header: {e}")))?;
                self.header = Some(header);
                continue;
            };
            let row = match &fields {
                None => Err((None, "is longer than 64 KiB".to_owned())),
                Some(fields) => {
                    Row::read(line, fields, header).map_err(|e| (id_of(fields, header), e))
                }
            };
            if let Some(group) = self.grouper.push(line, row) {
                self.submit(group).await;
            }
        }
        Ok(())
    }

    async fn submit(&mut self, group: Group) {
        if !group.bad.is_empty() {
            let id = group.location.id.clone();
            for (line, reason) in group.bad {
                self.report
                    .reject(line, format!("{reason}; location {id:?} not written"));
            }
            return;
        }
        while self.writes.len() >= WRITES_IN_FLIGHT {
            self.settle_one().await;
        }
        let locations = self.locations.clone();
        self.writes.push(Box::pin(async move {
            let result = locations.import(group.location.clone(), Utc::now()).await;
            (group, result)
        }));
    }

    async fn settle_one(&mut self) {
        let Some((group, result)) = self.writes.next().await else {
            return;
        };
        match result {
            Ok(changed) if changed.created => self.report.created += 1,
            Ok(_) => self.report.updated += 1,
            Err(Failure::Invalid(e)) => self
                .report
                .reject(group.line, format!("location {:?}: {e}", group.location.id)),
            Err(Failure::Store(e)) => {
                tracing::warn!(error = %e, "an imported location was not stored");
                self.report.reject(
                    group.line,
                    format!(
                        "location {:?}: not stored (server error)",
                        group.location.id
                    ),
                );
            }
            Err(other) => self.report.reject(
                group.line,
                format!("location {:?}: {other:?}", group.location.id),
            ),
        }
    }

    async fn finish(mut self) -> Result<ImportReport, V1Error> {
        self.feed(&[]).await?;
        if self.header.is_none() {
            return Err(V1Error::invalid("the CSV has no header"));
        }
        if let Some(group) = self.grouper.finish() {
            self.submit(group).await;
        }
        while !self.writes.is_empty() {
            self.settle_one().await;
        }
        // Writes settle in any order; the list reads in the file's.
        self.report.rejected.sort_by_key(|r| r.line);
        Ok(self.report)
    }
}

async fn import_stream<S, E>(locations: Locations, mut body: S) -> Result<ImportReport, V1Error>
where
    S: Stream<Item = Result<web::Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let mut importer = Importer {
        locations,
        parser: Records::default(),
        header: None,
        grouper: Grouper::default(),
        writes: FuturesUnordered::new(),
        report: ImportReport::default(),
    };
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| {
            V1Error::http(
                StatusCode::BAD_REQUEST,
                format!("cannot read the upload: {e}"),
            )
        })?;
        importer.feed(&chunk).await?;
    }
    importer.finish().await
}

/// Import locations from CSV (one row per connector; columns in the README).
#[utoipa::path(post, path = "/api/v1/locations/import", tag = "v1 locations",
    request_body(content = String, content_type = "text/csv", description = "The CSV, or multipart/form-data with field `file`"),
    responses((status = 200, description = "OCPI envelope with {created, updated, rejected: [{line, reason}], rejected_total}; 2001 for a bad header"),
        (status = 415, description = "Neither text/csv nor multipart/form-data")))]
pub async fn import(
    req: HttpRequest,
    payload: web::Payload,
    locations: web::Data<Locations>,
) -> Result<HttpResponse, V1Error> {
    let kind = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let locations = locations.get_ref().clone();
    let report = if kind.starts_with("text/csv") {
        import_stream(locations, payload).await?
    } else if kind.starts_with("multipart/form-data") {
        let mut parts = actix_multipart::Multipart::new(req.headers(), payload);
        let mut report = None;
        while let Some(field) = parts.try_next().await.map_err(|e| {
            V1Error::http(
                StatusCode::BAD_REQUEST,
                format!("malformed multipart body: {e}"),
            )
        })? {
            if field.name() == Some("file") && report.is_none() {
                report = Some(import_stream(locations.clone(), field).await?);
            } else {
                // Other fields are read past.
                let mut field = field;
                while let Some(chunk) = field.next().await {
                    chunk.map_err(|e| {
                        V1Error::http(
                            StatusCode::BAD_REQUEST,
                            format!("malformed multipart body: {e}"),
                        )
                    })?;
                }
            }
        }
        report.ok_or_else(|| V1Error::invalid("the multipart body has no field \"file\""))?
    } else {
        return Err(V1Error::http(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("content type {kind:?} is neither text/csv nor multipart/form-data"),
        ));
    };
    Ok(HttpResponse::Ok().json(success(report)))
}
