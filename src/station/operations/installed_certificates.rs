//! `POST /cs/{id}/installed-certificates/read` `{types?}` →
//! `GetInstalledCertificateIds`. Types use the 2.0.1 names; 1.6 asks for
//! exactly one type, of CSMSRootCertificate (CentralSystemRootCertificate)
//! and ManufacturerRootCertificate.
//!
//! `DELETE /cs/{id}/installed-certificates/{serialNumber}` →
//! `DeleteCertificate` with the certificate's hash data as the station
//! last reported it in such a read.

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

/// A certificate to delete, by the hash data the station reported.
#[derive(Debug, Deserialize)]
pub struct DeleteCertificate {
    /// `{hashAlgorithm, issuerNameHash, issuerKeyHash, serialNumber}`.
    pub certificate_hash_data: Value,
}

impl Operation for DeleteCertificate {
    const NAME: &'static str = "delete-certificate";

    fn translate(
        &self,
        _: Version,
        _: &mut dyn FnMut() -> i32,
    ) -> Result<(&'static str, Value), Untranslatable> {
        Ok((
            "DeleteCertificate",
            json!({ "certificateHashData": self.certificate_hash_data }),
        ))
    }
}

/// Every certificate hash data in a GetInstalledCertificateIds answer
/// (1.6 `certificateHashData`; 2.0.1 `certificateHashDataChain`, with the
/// chains' child certificates).
pub fn reported_hash_data(answer: &Value) -> Vec<&Value> {
    let mut found: Vec<&Value> = Vec::new();
    for data in answer["certificateHashData"]
        .as_array()
        .into_iter()
        .flatten()
    {
        found.push(data);
    }
    for chain in answer["certificateHashDataChain"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if chain["certificateHashData"].is_object() {
            found.push(&chain["certificateHashData"]);
        }
        for child in chain["childCertificateHashData"]
            .as_array()
            .into_iter()
            .flatten()
        {
            found.push(child);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::super::test_support::both;
    use super::*;

    #[test]
    fn reported_hash_data_of_both_versions_is_found() {
        let data = json!({"hashAlgorithm": "SHA256", "issuerNameHash": "a", "issuerKeyHash": "b", "serialNumber": "01"});
        let child = json!({"hashAlgorithm": "SHA256", "issuerNameHash": "c", "issuerKeyHash": "d", "serialNumber": "02"});
        let v16 = json!({"status": "Accepted", "certificateHashData": [data]});
        assert_eq!(reported_hash_data(&v16), vec![&data]);
        let v201 = json!({"status": "Accepted", "certificateHashDataChain": [
            {"certificateType": "CSMSRootCertificate", "certificateHashData": data, "childCertificateHashData": [child]}]});
        assert_eq!(reported_hash_data(&v201), vec![&data, &child]);
        let delete = DeleteCertificate {
            certificate_hash_data: data.clone(),
        };
        for version in [Version::V16, Version::V201] {
            let call = super::super::plan(&delete, version, &mut || 1).unwrap();
            assert_eq!(call.payload, json!({"certificateHashData": data}));
        }
    }

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
