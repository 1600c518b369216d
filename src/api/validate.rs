//! Field rules the REST API enforces beyond JSON types: identifier shapes,
//! lengths. Each failure names the field (location rules: `locations::rules`).

use super::error::ApiError;

/// Longest charge station id (OCPP 2.0.1 identity: 48 characters).
pub const MAX_STATION_ID_CHARS: usize = 48;

/// A 400 naming `field`.
pub fn invalid(field: &str, why: impl std::fmt::Display) -> ApiError {
    ApiError::BadRequest(format!("invalid field {field}: {why}"))
}

/// Checks a charge station id from the URL path: 1 to 48 printable ASCII
/// characters, none of which would need escaping in its OCPP URL.
pub fn station_id(id: &str) -> Result<(), ApiError> {
    let ok = (1..=MAX_STATION_ID_CHARS).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"/?#%\\\"<>".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "csId",
            format!("must be 1 to {MAX_STATION_ID_CHARS} printable ASCII characters without / ? # % \\ \" < >"),
        ))
    }
}

/// Checks that `value` has between `min` and `max` characters.
pub fn length(field: &str, value: &str, min: usize, max: usize) -> Result<(), ApiError> {
    crate::locations::rules::length(field, value, min, max)
        .map_err(|e| ApiError::BadRequest(e.to_string()))
}

/// Checks an optional field's length when present.
pub fn optional_length(
    field: &str,
    value: &Option<String>,
    min: usize,
    max: usize,
) -> Result<(), ApiError> {
    value
        .as_deref()
        .map_or(Ok(()), |v| length(field, v, min, max))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn station_ids() {
        assert!(station_id("CS001").is_ok());
        assert!(station_id("cs-01_A:b*=+|@.").is_ok());
        assert!(station_id(&"x".repeat(48)).is_ok());
        for bad in ["", "a/b", "a b", "a%20", "é", &"x".repeat(49)] {
            assert!(station_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn lengths_name_the_field() {
        let e = length("countryCode", "GBR", 2, 2).unwrap_err().to_string();
        assert_eq!(
            e,
            "invalid field countryCode: must be 2 characters long, not 3"
        );
    }
}
