//! The payment type codes an operator accepts on EVSEs (`--payment-types`).
//! Payment types are not an OCPI enum: the seeds' codes (GCASH, MAYA...)
//! are regional, so the operator names them, `/api/v1/filters` lists them,
//! and an EVSE carrying another code is refused. With none configured any
//! well-formed code is taken and none is listed.

use std::sync::Arc;

use super::rules::{self, invalid, Invalid};
use crate::store::Evse;

/// The accepted codes; empty accepts any well-formed code.
#[derive(Clone, Debug, Default)]
pub struct PaymentTypes(Arc<[String]>);

impl PaymentTypes {
    /// The configured codes, each well-formed, without repeats (in order).
    pub fn configured(codes: &[String]) -> Result<Self, String> {
        let mut accepted: Vec<String> = Vec::with_capacity(codes.len());
        for code in codes {
            let code = code.trim();
            rules::payment_type("--payment-types", code).map_err(|e| e.to_string())?;
            if !accepted.iter().any(|c| c == code) {
                accepted.push(code.to_owned());
            }
        }
        Ok(PaymentTypes(accepted.into()))
    }

    /// The accepted codes (empty: any).
    pub fn codes(&self) -> &[String] {
        &self.0
    }

    /// Refuses the first EVSE payment type that is not accepted.
    pub fn check(&self, evses: &[Evse]) -> Result<(), Invalid> {
        if self.0.is_empty() {
            return Ok(());
        }
        for (i, evse) in evses.iter().enumerate() {
            for (j, code) in evse.payment_types.iter().flatten().enumerate() {
                if !self.0.contains(code) {
                    return Err(invalid(
                        format!("evses[{i}].payment_types[{j}]"),
                        format!(
                            "{code:?} is not an accepted payment type ({})",
                            self.0.join(", ")
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn evse_paying(codes: &[&str]) -> Evse {
        let mut evse: Evse = serde_json::from_value(serde_json::json!({
            "uid": "E1", "status": "AVAILABLE", "connectors": [],
            "last_updated": "2026-12-01T00:00:00Z"}))
        .unwrap();
        evse.payment_types = Some(codes.iter().map(|c| c.to_string()).collect());
        evse
    }

    #[test]
    fn configured_codes_are_checked_and_deduplicated() {
        let accepted =
            PaymentTypes::configured(&["GCASH".into(), " MAYA".into(), "GCASH".into()]).unwrap();
        assert_eq!(accepted.codes(), ["GCASH", "MAYA"]);
        assert!(PaymentTypes::configured(&["cash!".into()])
            .unwrap_err()
            .contains("cash!"));
    }

    #[test]
    fn only_accepted_codes_pass_once_some_are_configured() {
        let any = PaymentTypes::default();
        assert!(any.check(&[evse_paying(&["WHATEVER"])]).is_ok());
        let accepted = PaymentTypes::configured(&["GCASH".into(), "MAYA".into()]).unwrap();
        assert!(accepted.check(&[evse_paying(&["MAYA"])]).is_ok());
        let refused = accepted
            .check(&[evse_paying(&["GCASH"]), evse_paying(&["MAYA", "CASH"])])
            .unwrap_err();
        assert_eq!(refused.field, "evses[1].payment_types[1]");
        assert!(refused.reason.contains("GCASH, MAYA"), "{refused:?}");
    }
}
