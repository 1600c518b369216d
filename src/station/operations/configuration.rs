//! `POST /cs/{id}/configuration/read` `{keys?}` → 1.6 `GetConfiguration`;
//! 2.0.1 `GetVariables` for named keys (`Component[;instance][;evse]/
//! Variable[;instance][;attribute]`, as `reconfigure` writes them) or
//! `GetBaseReport` (FullInventory) for everything.

use serde::Deserialize;
use serde_json::{json, Value};

use super::{Operation, Untranslatable};
use crate::ocpp::setting_key::{SettingKey, VariableRef};
use crate::ocpp::Version;

/// The read-configuration body.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReadConfiguration {
    /// The keys to read; all of them when absent.
    pub keys: Option<Vec<String>>,
}

impl Operation for ReadConfiguration {
    const NAME: &'static str = "configuration-read";

    fn translate(
        &self,
        version: Version,
        numbers: &mut dyn FnMut() -> i32,
    ) -> Result<(&'static str, Value), Untranslatable> {
        let keys = self.keys.as_deref().filter(|k| !k.is_empty());
        match (version, keys) {
            (Version::V16, None) => Ok(("GetConfiguration", json!({}))),
            (Version::V16, Some(keys)) => Ok(("GetConfiguration", json!({ "key": keys }))),
            (Version::V201, None) => Ok((
                "GetBaseReport",
                json!({"requestId": numbers(), "reportBase": "FullInventory"}),
            )),
            (Version::V201, Some(keys)) => {
                let mut data = Vec::with_capacity(keys.len());
                for key in keys {
                    let variable = match SettingKey::parse(key, "") {
                        Ok(SettingKey::V201(variable)) => variable,
                        Ok(SettingKey::V16(_)) => {
                            return Err(Untranslatable(format!(
                                "key {key:?} is not an OCPP 2.0.1 Component/Variable name"
                            )))
                        }
                        Err(e) => return Err(Untranslatable(format!("key {key:?}: {e}"))),
                    };
                    let mut entry = json!({
                        "component": component_json(&variable),
                        "variable": variable_json(&variable),
                    });
                    super::put(&mut entry, "attributeType", variable.attribute.as_ref());
                    data.push(entry);
                }
                Ok(("GetVariables", json!({ "getVariableData": data })))
            }
        }
    }
}

pub(crate) fn component_json(var: &VariableRef) -> Value {
    let mut component = json!({"name": var.component});
    if let Some(instance) = &var.component_instance {
        component["instance"] = json!(instance);
    }
    if let Some(evse) = var.evse {
        component["evse"] = json!({"id": evse});
    }
    component
}

pub(crate) fn variable_json(var: &VariableRef) -> Value {
    let mut variable = json!({"name": var.variable});
    if let Some(instance) = &var.variable_instance {
        variable["instance"] = json!(instance);
    }
    variable
}

#[cfg(test)]
mod tests {
    use super::super::test_support::both;
    use super::*;

    #[test]
    fn reads_translate_per_version() {
        let [v16, v201] = both::<ReadConfiguration>(json!({}));
        assert_eq!(v16.unwrap().payload, json!({}));
        let v201 = v201.unwrap();
        assert_eq!(v201.action, "GetBaseReport");
        assert_eq!(v201.payload["reportBase"], "FullInventory");
        let [v16, v201] = both::<ReadConfiguration>(json!({"keys": ["EVSE;2/Power;MaxSet"]}));
        assert_eq!(
            v16.unwrap().payload,
            json!({"key": ["EVSE;2/Power;MaxSet"]})
        );
        assert_eq!(
            v201.unwrap().payload,
            json!({"getVariableData": [{"component": {"name": "EVSE", "evse": {"id": 2}}, "variable": {"name": "Power"}, "attributeType": "MaxSet"}]})
        );
        let [_, v201] = both::<ReadConfiguration>(json!({"keys": ["HeartbeatInterval"]}));
        assert!(v201.unwrap_err().0.contains("not an OCPP 2.0.1"));
    }
}
