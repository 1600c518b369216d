//! `POST /cs/{id}/installed-certificates/read` `{types?}` →
//! `GetInstalledCertificateIds`. Types use the 2.0.1 names; 1.6 asks for
//! exactly one type, of CSMSRootCertificate (CentralSystemRootCertificate)
//! and ManufacturerRootCertificate.

use serde::Deserialize;
use serde_json::{json, Value};

use super::{Operation, Untranslatable};
use crate::ocpp::Version;

/// The read-installed-certificates body.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReadInstalledCertificates {
    /// V2GRootCertificate, MORootCertificate, CSMSRootCertificate,
    /// V2GCertificateChain, ManufacturerRootCertificate; all when absent (2.0.1).
    pub types: Option<Vec<String>>,
}

impl Operation for ReadInstalledCertificates {
    const NAME: &'static str = "installed-certificates-read";

    fn translate(
        &self,
        version: Version,
        _: &mut dyn FnMut() -> i32,
    ) -> Result<(&'static str, Value), Untranslatable> {
        let types = self.types.as_deref().unwrap_or_default();
        let payload = match version {
            Version::V16 => {
                let [kind] = types else {
                    return Err(Untranslatable(
                        "OCPP 1.6 reads one certificate type at a time: give exactly one in types"
                            .into(),
                    ));
                };
                let kind = match kind.as_str() {
                    "CSMSRootCertificate" => "CentralSystemRootCertificate",
                    "ManufacturerRootCertificate" => "ManufacturerRootCertificate",
                    other => {
                        return Err(Untranslatable(format!(
                            "OCPP 1.6 has no certificate type {other} to read"
                        )))
                    }
                };
                json!({ "certificateType": kind })
            }
            Version::V201 if types.is_empty() => json!({}),
            Version::V201 => json!({ "certificateType": types }),
        };
        Ok(("GetInstalledCertificateIds", payload))
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::both;
    use super::*;

    #[test]
    fn types_translate_per_version() {
        let [v16, v201] =
            both::<ReadInstalledCertificates>(json!({"types": ["CSMSRootCertificate"]}));
        assert_eq!(
            v16.unwrap().payload,
            json!({"certificateType": "CentralSystemRootCertificate"})
        );
        assert_eq!(
            v201.unwrap().payload,
            json!({"certificateType": ["CSMSRootCertificate"]})
        );
        let [v16, v201] = both::<ReadInstalledCertificates>(json!({}));
        assert!(v16.is_err());
        assert_eq!(v201.unwrap().payload, json!({}));
        let [_, v201] = both::<ReadInstalledCertificates>(json!({"types": ["Bogus"]}));
        assert!(v201.unwrap_err().0.contains("/certificateType/0"));
    }
}
