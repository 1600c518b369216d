//! SignCertificate: a station asks the CSMS to sign its CSR (OCPP 1.6
//! security extension, OCPP 2.0.1, and the 1.6 Plug & Charge DataTransfer).
//!
//! With a CA configured the CSR is checked and signed at once; the answer
//! is Accepted and the chain goes back in a CertificateSigned CALL, stored
//! as a command (configuration-like: it waits for the station if it drops)
//! that the actor sends after the answer. Without a CA, or for a CSR that
//! does not name the station, the answer is Rejected (and counted).

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::{Env, HandlerError, Station};
use crate::metrics::unconfigured_service;
use crate::ocpp::Version;
use crate::station::operations::catalog;
use crate::store::CommandRecord;

/// The PnC DataTransfer vendor (1.6).
const PNC_VENDOR_ID: &str = "org.openchargealliance.iso15118pnc";

/// How the CertificateSigned goes back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Route {
    /// As the version's own CertificateSigned.
    Direct,
    /// 1.6 only: inside the PnC DataTransfer.
    PlugAndCharge,
}

/// Signs `request` (`{csr, certificateType?}`) for `station`: the status to
/// answer, and the stored CertificateSigned command when signed.
pub(super) async fn sign(
    env: &Env,
    station: &Station,
    request: &Value,
    route: Route,
    now: DateTime<Utc>,
) -> Result<(&'static str, Option<CommandRecord>), HandlerError> {
    let Some(ca) = &env.ca else {
        unconfigured_service("certificate_authority");
        return Ok(("Rejected", None));
    };
    let csr = request["csr"].as_str().unwrap_or_default();
    let chain = match ca.sign(&station.id, csr, now) {
        Ok(chain) => chain,
        Err(refusal) => {
            tracing::warn!(station = %station.id, %refusal, "CSR refused");
            crate::metrics::csr_refused();
            return Ok(("Rejected", None));
        }
    };
    let mut signed = json!({ "certificateChain": chain });
    if let Some(kind) = request["certificateType"].as_str() {
        // 2.0.1 (and PnC) name what was signed; 1.6's own message has no such field.
        if station.version == Version::V201 || route == Route::PlugAndCharge {
            signed["certificateType"] = json!(kind);
        }
    }
    let (action, payload) = match route {
        Route::Direct => ("CertificateSigned", signed),
        Route::PlugAndCharge => (
            "DataTransfer",
            json!({"vendorId": PNC_VENDOR_ID, "messageId": "CertificateSigned", "data": signed.to_string()}),
        ),
    };
    let class = catalog::find(station.version, "CertificateSigned")
        .map(|(_, class)| class)
        .unwrap_or(crate::store::DeliveryClass::Configuration);
    let command = CommandRecord::pending(
        &station.id,
        "sign-certificate",
        action,
        station.version,
        payload,
        class,
        now,
    );
    env.store.create_command(command.clone()).await?;
    Ok(("Accepted", Some(command)))
}
