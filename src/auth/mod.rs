//! Station authentication at the WebSocket handshake (security profiles 0
//! and 1: HTTP Basic auth). Pure: it decides on the registration and the
//! request's headers; the endpoint does the lookups and the answering.
//!
//! The password check compares SHA-256(password) with the registered hash in
//! constant time; passwords are never logged or kept.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::store::{ChargeStationAuth, SecurityProfile};

/// Why a connection attempt is refused (a closed set, used as a metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No station registered under this id.
    UnknownStation,
    /// No `Authorization: Basic` header.
    NoCredentials,
    /// The header is not valid Basic credentials.
    MalformedCredentials,
    /// The username is not the station id (and the station does not allow that).
    WrongUsername,
    /// The password does not match.
    WrongPassword,
    /// The station's security profile needs TLS (or a client certificate).
    TlsRequired,
}

impl Refusal {
    /// Label for metrics and logs.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::UnknownStation => "unknown_station",
            Refusal::NoCredentials => "no_credentials",
            Refusal::MalformedCredentials => "malformed_credentials",
            Refusal::WrongUsername => "wrong_username",
            Refusal::WrongPassword => "wrong_password",
            Refusal::TlsRequired => "tls_required",
        }
    }
}

/// How the request reached voltgate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Plain `ws://`.
    Plain,
    /// TLS, terminated by voltgate or by a trusted proxy.
    Tls,
}

/// Decides whether station `id` with registration `auth` may connect with
/// this `Authorization` header over `transport`.
pub fn check(
    id: &str,
    auth: &ChargeStationAuth,
    authorization: Option<&str>,
    transport: Transport,
) -> Result<(), Refusal> {
    match (auth.security_profile, transport) {
        (SecurityProfile::UnsecuredBasicAuth, _)
        | (SecurityProfile::TlsBasicAuth, Transport::Tls) => {}
        _ => return Err(Refusal::TlsRequired),
    }
    let header = authorization.ok_or(Refusal::NoCredentials)?;
    let (username, password) = parse_basic(header)?;
    if username != id && !auth.invalid_username_allowed {
        return Err(Refusal::WrongUsername);
    }
    let registered = auth
        .base64_sha256_password
        .as_deref()
        .and_then(|h| STANDARD.decode(h).ok())
        .ok_or(Refusal::WrongPassword)?;
    let offered = Sha256::digest(password.as_bytes());
    if registered.len() == offered.len()
        && bool::from(registered.as_slice().ct_eq(offered.as_slice()))
    {
        Ok(())
    } else {
        Err(Refusal::WrongPassword)
    }
}

/// Splits `Basic base64(user:password)`.
fn parse_basic(header: &str) -> Result<(String, String), Refusal> {
    let (scheme, encoded) = header
        .trim()
        .split_once(' ')
        .ok_or(Refusal::MalformedCredentials)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(Refusal::NoCredentials);
    }
    let decoded = STANDARD
        .decode(encoded.trim())
        .map_err(|_| Refusal::MalformedCredentials)?;
    let text = String::from_utf8(decoded).map_err(|_| Refusal::MalformedCredentials)?;
    let (user, password) = text.split_once(':').ok_or(Refusal::MalformedCredentials)?;
    Ok((user.to_owned(), password.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registered(
        profile: SecurityProfile,
        password: &str,
        any_username: bool,
    ) -> ChargeStationAuth {
        ChargeStationAuth {
            security_profile: profile,
            base64_sha256_password: Some(STANDARD.encode(Sha256::digest(password.as_bytes()))),
            invalid_username_allowed: any_username,
        }
    }

    fn basic(user: &str, password: &str) -> String {
        format!("Basic {}", STANDARD.encode(format!("{user}:{password}")))
    }

    #[test]
    fn the_right_password_for_the_right_station_passes() {
        let auth = registered(
            SecurityProfile::UnsecuredBasicAuth,
            "s3cret:with:colons",
            false,
        );
        assert_eq!(
            check(
                "CS1",
                &auth,
                Some(&basic("CS1", "s3cret:with:colons")),
                Transport::Plain
            ),
            Ok(())
        );
    }

    #[test]
    fn every_failure_has_its_reason() {
        let auth = registered(SecurityProfile::UnsecuredBasicAuth, "pw", false);
        assert_eq!(
            check("CS1", &auth, None, Transport::Plain),
            Err(Refusal::NoCredentials)
        );
        assert_eq!(
            check("CS1", &auth, Some("Bearer x"), Transport::Plain),
            Err(Refusal::NoCredentials)
        );
        assert_eq!(
            check("CS1", &auth, Some("Basic !!!"), Transport::Plain),
            Err(Refusal::MalformedCredentials)
        );
        assert_eq!(
            check(
                "CS1",
                &auth,
                Some(&format!("Basic {}", STANDARD.encode("nocolon"))),
                Transport::Plain
            ),
            Err(Refusal::MalformedCredentials)
        );
        assert_eq!(
            check("CS1", &auth, Some(&basic("CS2", "pw")), Transport::Plain),
            Err(Refusal::WrongUsername)
        );
        assert_eq!(
            check("CS1", &auth, Some(&basic("CS1", "PW")), Transport::Plain),
            Err(Refusal::WrongPassword)
        );
    }

    #[test]
    fn usernames_may_be_tolerated() {
        let auth = registered(SecurityProfile::UnsecuredBasicAuth, "pw", true);
        assert_eq!(
            check(
                "CS1",
                &auth,
                Some(&basic("someone", "pw")),
                Transport::Plain
            ),
            Ok(())
        );
    }

    #[test]
    fn profiles_1_and_2_need_tls() {
        let tls_basic = registered(SecurityProfile::TlsBasicAuth, "pw", false);
        assert_eq!(
            check(
                "CS1",
                &tls_basic,
                Some(&basic("CS1", "pw")),
                Transport::Plain
            ),
            Err(Refusal::TlsRequired)
        );
        assert_eq!(
            check("CS1", &tls_basic, Some(&basic("CS1", "pw")), Transport::Tls),
            Ok(())
        );
        let cert = registered(SecurityProfile::TlsClientCertificate, "pw", false);
        assert_eq!(
            check("CS1", &cert, Some(&basic("CS1", "pw")), Transport::Plain),
            Err(Refusal::TlsRequired)
        );
    }
}
