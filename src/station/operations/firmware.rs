//! `POST /cs/{id}/firmware` `{location, retrieveDate, installDate?,
//! retries?, retryInterval?, signature?, signingCertificate?}` → 1.6
//! `UpdateFirmware` (or `SignedUpdateFirmware` when signed), 2.0.1
//! `UpdateFirmware`. voltgate assigns the requestId of the signed forms.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{timestamp, Operation, Untranslatable};
use crate::ocpp::Version;

/// The firmware body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Firmware {
    /// Where the station downloads the firmware (URI).
    pub location: String,
    /// When to download it.
    pub retrieve_date: DateTime<Utc>,
    /// When to install it (signed forms only).
    pub install_date: Option<DateTime<Utc>>,
    /// Download attempts.
    pub retries: Option<i64>,
    /// Seconds between attempts.
    pub retry_interval: Option<i64>,
    /// Base64 signature of the firmware.
    pub signature: Option<String>,
    /// PEM certificate that signed it.
    pub signing_certificate: Option<String>,
}

impl Operation for Firmware {
    const NAME: &'static str = "firmware";

    fn translate(
        &self,
        version: Version,
        numbers: &mut dyn FnMut() -> i32,
    ) -> Result<(&'static str, Value), Untranslatable> {
        let signed = self.signature.is_some() || self.signing_certificate.is_some();
        let firmware = || {
            let mut firmware = json!({
                "location": self.location,
                "retrieveDateTime": timestamp(self.retrieve_date),
            });
            super::put(
                &mut firmware,
                "installDateTime",
                self.install_date.map(timestamp),
            );
            super::put(
                &mut firmware,
                "signingCertificate",
                self.signing_certificate.as_ref(),
            );
            super::put(&mut firmware, "signature", self.signature.as_ref());
            firmware
        };
        let (action, mut payload) = match (version, signed) {
            (Version::V16, false) => {
                if self.install_date.is_some() {
                    return Err(super::not_in_v16("install date for unsigned firmware"));
                }
                (
                    "UpdateFirmware",
                    json!({"location": self.location, "retrieveDate": timestamp(self.retrieve_date)}),
                )
            }
            (Version::V16, true) => (
                "SignedUpdateFirmware",
                json!({"requestId": numbers(), "firmware": firmware()}),
            ),
            (Version::V201, _) => (
                "UpdateFirmware",
                json!({"requestId": numbers(), "firmware": firmware()}),
            ),
        };
        super::put(&mut payload, "retries", self.retries);
        super::put(&mut payload, "retryInterval", self.retry_interval);
        Ok((action, payload))
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::both;
    use super::*;

    #[test]
    fn firmware_translates_per_version() {
        let body = json!({"location": "https://fw.example/1.2.bin", "retrieveDate": "2026-12-01T10:00:00Z", "retries": 3});
        let [v16, v201] = both::<Firmware>(body);
        let v16 = v16.unwrap();
        assert_eq!(v16.action, "UpdateFirmware");
        assert_eq!(v16.payload["retrieveDate"], "2026-12-01T10:00:00.000Z");
        let v201 = v201.unwrap();
        assert_eq!(
            v201.payload["firmware"]["location"],
            "https://fw.example/1.2.bin"
        );
        assert_eq!(v201.payload["requestId"], 7);
        let signed = json!({"location": "https://fw.example/1.2.bin", "retrieveDate": "2026-12-01T10:00:00Z",
            "signature": "c2ln", "signingCertificate": "-----BEGIN CERTIFICATE-----"});
        let [v16, _] = both::<Firmware>(signed);
        assert_eq!(v16.unwrap().action, "SignedUpdateFirmware");
    }
}
