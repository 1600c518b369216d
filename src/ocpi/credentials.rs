//! The credentials handshake, both directions, short of storage and HTTP
//! serving: voltgate's own credentials, reading a partner's, and learning a
//! partner's 2.2.1 endpoints from its versions URL.

use std::time::Duration;

use awc::http::Method;
use serde_json::{json, Value};

use super::client::{call, CallError};
use super::transport::{code, OcpiError};
use crate::store::{PartnerEndpoint, PartnerRole};

/// The only OCPI version voltgate speaks.
pub const VERSION: &str = "2.2.1";

/// Who voltgate is towards partners.
#[derive(Debug, Clone)]
pub struct Identity {
    /// Public origin, without a trailing slash.
    pub base_url: String,
    /// CPO country code.
    pub country_code: String,
    /// CPO party id.
    pub party_id: String,
    /// Business name in the credentials.
    pub business_name: String,
    /// Timeout of one outgoing call.
    pub call_timeout: Duration,
}

impl Identity {
    /// voltgate's versions URL.
    pub fn versions_url(&self) -> String {
        format!("{}/ocpi/versions", self.base_url)
    }

    /// voltgate's 2.2.1 version details URL.
    pub fn details_url(&self) -> String {
        format!("{}/ocpi/{VERSION}", self.base_url)
    }

    /// The URL of one of voltgate's modules.
    pub fn module_url(&self, module: &str) -> String {
        format!("{}/ocpi/{VERSION}/{module}", self.base_url)
    }

    /// voltgate's credentials carrying `token` (the one the partner is to use).
    pub fn credentials(&self, token: &str) -> Value {
        json!({
            "token": token,
            "url": self.versions_url(),
            "roles": [{
                "role": "CPO",
                "party_id": self.party_id,
                "country_code": self.country_code,
                "business_details": {"name": self.business_name},
            }],
        })
    }
}

/// A partner's credentials as it sent them.
#[derive(Debug, Clone, PartialEq)]
pub struct Credentials {
    /// The token voltgate is to use towards the partner.
    pub token: String,
    /// The partner's versions URL.
    pub url: String,
    /// Its roles.
    pub roles: Vec<PartnerRole>,
}

/// Reads a Credentials object; 2001 naming the first field that is wrong.
pub fn read_credentials(value: &Value) -> Result<Credentials, OcpiError> {
    let text = |field: &str, max: usize| -> Result<String, OcpiError> {
        let v = value[field]
            .as_str()
            .ok_or_else(|| OcpiError::invalid(field, "missing or not a string"))?;
        if v.is_empty() || v.len() > max {
            return Err(OcpiError::invalid(
                field,
                format!("must be 1 to {max} characters"),
            ));
        }
        Ok(v.to_owned())
    };
    let token = text("token", 64)?;
    let url = text("url", 255)?;
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(OcpiError::invalid("url", "must be an http(s) URL"));
    }
    let roles = value["roles"]
        .as_array()
        .filter(|r| !r.is_empty())
        .ok_or_else(|| OcpiError::invalid("roles", "must be a non-empty list"))?;
    let mut read = Vec::with_capacity(roles.len());
    for (i, role) in roles.iter().enumerate() {
        let field = |name: &str| format!("roles[{i}].{name}");
        let string = |name: &str, len: std::ops::RangeInclusive<usize>| {
            role[name]
                .as_str()
                .filter(|s| len.contains(&s.len()))
                .map(str::to_owned)
                .ok_or_else(|| OcpiError::invalid(&field(name), "missing or of the wrong length"))
        };
        let kind = string("role", 1..=8)?;
        const ROLES: [&str; 7] = ["CPO", "EMSP", "HUB", "NAP", "NSP", "OTHER", "SCSP"];
        if !ROLES.contains(&kind.as_str()) {
            return Err(OcpiError::invalid(
                &field("role"),
                format!("{kind:?} is not an OCPI role"),
            ));
        }
        let business_details = role["business_details"].clone();
        if !business_details["name"].is_string() {
            return Err(OcpiError::invalid(
                &field("business_details.name"),
                "missing",
            ));
        }
        read.push(PartnerRole {
            role: kind,
            country_code: string("country_code", 2..=2)?,
            party_id: string("party_id", 3..=3)?,
            business_details,
        });
    }
    Ok(Credentials {
        token,
        url,
        roles: read,
    })
}

/// Why a partner's endpoints could not be learned.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EndpointsError {
    /// A call failed.
    #[error(transparent)]
    Call(#[from] CallError),
    /// The partner does not offer 2.2.1.
    #[error("the partner offers no OCPI 2.2.1 (versions: {0})")]
    UnsupportedVersion(String),
    /// The answers did not have the expected shape.
    #[error("the partner's {0}")]
    Malformed(String),
}

impl EndpointsError {
    /// The OCPI status of a credentials answer that failed for this reason.
    pub fn as_ocpi(&self) -> OcpiError {
        let status = match self {
            EndpointsError::Call(_) => code::CLIENT_API_UNUSABLE,
            EndpointsError::UnsupportedVersion(_) => code::UNSUPPORTED_VERSION,
            EndpointsError::Malformed(_) => code::NO_MATCHING_ENDPOINTS,
        };
        OcpiError::ok_with(status, self.to_string())
    }
}

/// The partner's 2.2.1 endpoints: its versions, then the 2.2.1 details.
pub async fn fetch_endpoints(
    versions_url: &str,
    token: &str,
    timeout: Duration,
) -> Result<Vec<PartnerEndpoint>, EndpointsError> {
    let versions = call(Method::GET, versions_url, token, None, timeout).await?;
    let details_url = version_url(&versions)?;
    let details = call(Method::GET, &details_url, token, None, timeout).await?;
    read_endpoints(&details)
}

/// The details URL of 2.2.1 in a versions list.
fn version_url(versions: &Value) -> Result<String, EndpointsError> {
    let list = versions
        .as_array()
        .ok_or_else(|| EndpointsError::Malformed("versions answer is not a list".into()))?;
    let url = list
        .iter()
        .find(|v| v["version"] == VERSION)
        .and_then(|v| v["url"].as_str());
    match url {
        Some(url) => Ok(url.to_owned()),
        None => Err(EndpointsError::UnsupportedVersion(
            list.iter()
                .filter_map(|v| v["version"].as_str())
                .collect::<Vec<_>>()
                .join(", "),
        )),
    }
}

/// The endpoints of a 2.2.1 version details answer.
fn read_endpoints(details: &Value) -> Result<Vec<PartnerEndpoint>, EndpointsError> {
    let list = details["endpoints"].as_array().ok_or_else(|| {
        EndpointsError::Malformed("version details have no endpoints list".into())
    })?;
    let mut endpoints = Vec::with_capacity(list.len());
    for endpoint in list {
        let (Some(identifier), Some(role), Some(url)) = (
            endpoint["identifier"].as_str(),
            endpoint["role"].as_str(),
            endpoint["url"].as_str(),
        ) else {
            return Err(EndpointsError::Malformed(format!(
                "endpoint {endpoint} lacks identifier, role or url"
            )));
        };
        endpoints.push(PartnerEndpoint {
            identifier: identifier.to_owned(),
            role: role.to_owned(),
            url: url.to_owned(),
        });
    }
    if !endpoints.iter().any(|e| e.identifier == "credentials") {
        return Err(EndpointsError::Malformed(
            "version details list no credentials endpoint".into(),
        ));
    }
    Ok(endpoints)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credentials() -> Value {
        json!({"token": "tok-b", "url": "https://emsp.example/ocpi/versions", "roles": [
            {"role": "EMSP", "party_id": "EMS", "country_code": "NL", "business_details": {"name": "E"}}]})
    }

    #[test]
    fn credentials_are_read_and_the_wrong_field_named() {
        let read = read_credentials(&credentials()).unwrap();
        assert_eq!(read.token, "tok-b");
        assert_eq!(read.roles[0].party_id, "EMS");
        for (path, bad, field) in [
            ("/token", json!(""), "token"),
            ("/url", json!("ftp://x"), "url"),
            ("/roles", json!([]), "roles"),
            ("/roles/0/role", json!("DRIVER"), "roles[0].role"),
            ("/roles/0/party_id", json!("TOOLONG"), "roles[0].party_id"),
        ] {
            let mut value = credentials();
            *value.pointer_mut(path).unwrap() = bad;
            let error = read_credentials(&value).unwrap_err();
            assert_eq!(error.code, code::INVALID_PARAMETERS);
            assert!(error.message.contains(field), "{path}: {}", error.message);
        }
    }

    #[test]
    fn the_221_endpoints_are_found_or_the_reason_given() {
        let versions = json!([{"version": "2.1.1", "url": "a"}, {"version": "2.2.1", "url": "b"}]);
        assert_eq!(version_url(&versions).unwrap(), "b");
        let old = json!([{"version": "2.1.1", "url": "a"}]);
        assert_eq!(
            version_url(&old),
            Err(EndpointsError::UnsupportedVersion("2.1.1".into()))
        );
        let details = json!({"version": "2.2.1", "endpoints": [
            {"identifier": "credentials", "role": "RECEIVER", "url": "c"},
            {"identifier": "locations", "role": "RECEIVER", "url": "l"}]});
        assert_eq!(read_endpoints(&details).unwrap().len(), 2);
        let none = json!({"version": "2.2.1", "endpoints": [{"identifier": "locations", "role": "RECEIVER", "url": "l"}]});
        assert!(matches!(
            read_endpoints(&none),
            Err(EndpointsError::Malformed(_))
        ));
    }
}
