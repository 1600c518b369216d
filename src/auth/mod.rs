//! Station authentication at the WebSocket handshake: HTTP Basic auth
//! (MaEVe profiles 0 and 1, over plain or TLS transport) and TLS client
//! certificates (profile 2). Pure: it decides on the registration and what
//! the handshake presented; the endpoint does the lookups and the answering.
//!
//! The password check compares SHA-256(password) with the registered hash in
//! constant time; passwords are never logged or kept.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::pki::CertificateIdentity;
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
    /// Profile 2, and no client certificate was presented.
    NoClientCertificate,
    /// The client certificate's chain was not verified (by a proxy), or it
    /// could not be read.
    UnverifiedCertificate,
    /// A proxy named a certificate hash that was never uploaded.
    UnknownCertificate,
    /// The certificate's common name is not the station id.
    CertificateNameMismatch,
    /// The certificate's organisation is not an allowed one.
    CertificateOrganization,
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
            Refusal::NoClientCertificate => "no_client_certificate",
            Refusal::UnverifiedCertificate => "unverified_certificate",
            Refusal::UnknownCertificate => "unknown_certificate",
            Refusal::CertificateNameMismatch => "certificate_name_mismatch",
            Refusal::CertificateOrganization => "certificate_organization",
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

/// The client certificate a handshake presented, as far as it is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientCertificate {
    /// None was presented.
    Absent,
    /// One whose chain was verified (by voltgate's TLS listener against
    /// --tls-client-ca, or by a trusted proxy), naming this subject.
    Verified(CertificateIdentity),
    /// One whose chain was not verified, or that could not be read.
    Unverified,
    /// A trusted proxy named a hash that was never uploaded.
    Unknown,
}

/// What a station's client certificate must say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertificatePolicy {
    /// The common name must be the station id.
    pub require_name_match: bool,
    /// Allowed organisations (O); empty: any.
    pub allowed_organizations: Vec<String>,
}

/// Decides whether station `id` with registration `auth` may connect with
/// what its handshake presented: Basic credentials for profiles 0 and 1, a
/// verified client certificate over TLS for profile 2.
pub fn admit(
    id: &str,
    auth: &ChargeStationAuth,
    authorization: Option<&str>,
    transport: Transport,
    certificate: &ClientCertificate,
    policy: &CertificatePolicy,
) -> Result<(), Refusal> {
    if auth.security_profile != SecurityProfile::TlsClientCertificate {
        return check(id, auth, authorization, transport);
    }
    if transport != Transport::Tls {
        return Err(Refusal::TlsRequired);
    }
    let identity = match certificate {
        ClientCertificate::Verified(identity) => identity,
        ClientCertificate::Absent => return Err(Refusal::NoClientCertificate),
        ClientCertificate::Unverified => return Err(Refusal::UnverifiedCertificate),
        ClientCertificate::Unknown => return Err(Refusal::UnknownCertificate),
    };
    if policy.require_name_match && identity.common_name.as_deref() != Some(id) {
        return Err(Refusal::CertificateNameMismatch);
    }
    let allowed = &policy.allowed_organizations;
    if !allowed.is_empty() && !identity.organizations.iter().any(|o| allowed.contains(o)) {
        return Err(Refusal::CertificateOrganization);
    }
    Ok(())
}

/// Decides whether station `id` with registration `auth` may connect with
/// this `Authorization` header over `transport` (the password profiles).
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

    fn identity(cn: &str, org: &str) -> ClientCertificate {
        ClientCertificate::Verified(CertificateIdentity {
            common_name: Some(cn.to_owned()),
            organizations: vec![org.to_owned()],
            hash: "h".into(),
        })
    }

    #[test]
    fn profile_2_needs_a_verified_certificate_naming_the_station() {
        let auth = registered(SecurityProfile::TlsClientCertificate, "pw", false);
        let policy = CertificatePolicy {
            require_name_match: true,
            allowed_organizations: vec!["Acme".into()],
        };
        let admit = |transport, cert: &ClientCertificate| {
            admit("CS1", &auth, None, transport, cert, &policy)
        };
        let good = identity("CS1", "Acme");
        assert_eq!(admit(Transport::Tls, &good), Ok(()));
        assert_eq!(admit(Transport::Plain, &good), Err(Refusal::TlsRequired));
        let cases = [
            (ClientCertificate::Absent, Refusal::NoClientCertificate),
            (
                ClientCertificate::Unverified,
                Refusal::UnverifiedCertificate,
            ),
            (ClientCertificate::Unknown, Refusal::UnknownCertificate),
            (identity("CS2", "Acme"), Refusal::CertificateNameMismatch),
            (identity("CS1", "Evil"), Refusal::CertificateOrganization),
        ];
        for (cert, refusal) in cases {
            assert_eq!(admit(Transport::Tls, &cert), Err(refusal), "{cert:?}");
        }
        let lax = CertificatePolicy::default();
        let other = identity("CS9", "Anyone");
        assert_eq!(
            super::admit("CS1", &auth, None, Transport::Tls, &other, &lax),
            Ok(())
        );
    }

    #[test]
    fn password_profiles_ignore_certificates() {
        let auth = registered(SecurityProfile::TlsBasicAuth, "pw", false);
        let policy = CertificatePolicy::default();
        let basic = basic("CS1", "pw");
        let ok = admit(
            "CS1",
            &auth,
            Some(&basic),
            Transport::Tls,
            &ClientCertificate::Absent,
            &policy,
        );
        assert_eq!(ok, Ok(()));
        let plain = admit(
            "CS1",
            &auth,
            Some(&basic),
            Transport::Plain,
            &identity("CS1", "A"),
            &policy,
        );
        assert_eq!(plain, Err(Refusal::TlsRequired));
    }
}
