//! Names of station settings as operators write them (MaEVe convention):
//! a 1.6 configuration key (`HeartbeatInterval`), or a 2.0.1 variable as
//! `Component[;instance][;evse]/Variable[;instance][;attribute]`.
//!
//! Where a segment could be read two ways, this reading is used: a last
//! component segment of digits is the EVSE id, and a last variable segment
//! that names an attribute type (Actual, Target, MinSet, MaxSet) is the
//! attribute.

/// Longest 1.6 configuration key (CiString50).
pub const MAX_V16_KEY_CHARS: usize = 50;
/// Longest 1.6 configuration value (CiString500).
pub const MAX_V16_VALUE_CHARS: usize = 500;
/// Longest 2.0.1 component/variable name or instance (string[0..50]).
pub const MAX_V201_NAME_CHARS: usize = 50;
/// Longest 2.0.1 attribute value (string[0..1000]).
pub const MAX_V201_VALUE_CHARS: usize = 1000;

const ATTRIBUTES: [&str; 4] = ["Actual", "Target", "MinSet", "MaxSet"];

/// A parsed setting name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettingKey {
    /// An OCPP 1.6 configuration key.
    V16(String),
    /// An OCPP 2.0.1 component variable.
    V201(VariableRef),
}

/// An OCPP 2.0.1 component variable with its optional parts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VariableRef {
    /// Component name.
    pub component: String,
    /// Component instance.
    pub component_instance: Option<String>,
    /// EVSE the component belongs to.
    pub evse: Option<u32>,
    /// Variable name.
    pub variable: String,
    /// Variable instance.
    pub variable_instance: Option<String>,
    /// Attribute type (Actual when absent).
    pub attribute: Option<String>,
}

/// Why a setting name or value is refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SettingKeyError {
    /// The name does not follow either form.
    #[error("{0}")]
    Malformed(String),
    /// The value is longer than the protocol allows for this kind of key.
    #[error("value is {len} characters long, at most {max} are allowed")]
    ValueTooLong {
        /// The value's length.
        len: usize,
        /// The limit.
        max: usize,
    },
}

impl SettingKey {
    /// Parses a setting name and checks its value's length.
    pub fn parse(key: &str, value: &str) -> Result<SettingKey, SettingKeyError> {
        let parsed = match key.split_once('/') {
            None => parse_v16(key)?,
            Some((component, variable)) => SettingKey::V201(parse_v201(component, variable)?),
        };
        let max = match parsed {
            SettingKey::V16(_) => MAX_V16_VALUE_CHARS,
            SettingKey::V201(_) => MAX_V201_VALUE_CHARS,
        };
        let len = value.chars().count();
        if len > max {
            return Err(SettingKeyError::ValueTooLong { len, max });
        }
        Ok(parsed)
    }
}

impl VariableRef {
    /// The variable that 2.0.1 `ComponentType` and `VariableType` JSON name,
    /// with its attribute type (Actual, the default, is left out).
    pub fn from_json(
        component: &serde_json::Value,
        variable: &serde_json::Value,
        attribute: Option<&str>,
    ) -> Option<VariableRef> {
        let text = |v: &serde_json::Value| v.as_str().map(str::to_owned);
        Some(VariableRef {
            component: text(&component["name"])?,
            component_instance: text(&component["instance"]),
            evse: component["evse"]["id"]
                .as_u64()
                .and_then(|e| u32::try_from(e).ok()),
            variable: text(&variable["name"])?,
            variable_instance: text(&variable["instance"]),
            attribute: attribute.filter(|a| *a != "Actual").map(str::to_owned),
        })
    }

    /// The variable an entry names with `component`, `variable` and
    /// `attributeType` (GetVariableResult, SetVariableData, SetVariableResult).
    pub fn of_entry(entry: &serde_json::Value) -> Option<VariableRef> {
        VariableRef::from_json(
            &entry["component"],
            &entry["variable"],
            entry["attributeType"].as_str(),
        )
    }

    /// The key that [`SettingKey::parse`] reads back as this variable:
    /// `Component[;instance][;evse]/Variable[;instance][;attribute]`.
    pub fn key(&self) -> String {
        let mut key = self.component.clone();
        for part in [
            self.component_instance.clone(),
            self.evse.map(|e| e.to_string()),
        ]
        .into_iter()
        .flatten()
        {
            key.push(';');
            key.push_str(&part);
        }
        key.push('/');
        key.push_str(&self.variable);
        for part in [&self.variable_instance, &self.attribute]
            .into_iter()
            .flatten()
        {
            key.push(';');
            key.push_str(part);
        }
        key
    }
}

fn parse_v16(key: &str) -> Result<SettingKey, SettingKeyError> {
    let len = key.chars().count();
    if len == 0 || len > MAX_V16_KEY_CHARS || !key.chars().all(|c| c.is_ascii_graphic()) {
        return Err(SettingKeyError::Malformed(format!(
            "an OCPP 1.6 key must be 1 to {MAX_V16_KEY_CHARS} printable ASCII characters"
        )));
    }
    Ok(SettingKey::V16(key.to_owned()))
}

fn parse_v201(component: &str, variable: &str) -> Result<VariableRef, SettingKeyError> {
    let mut c: Vec<&str> = component.split(';').collect();
    let mut v: Vec<&str> = variable.split(';').collect();
    let evse = match c.last() {
        Some(last)
            if c.len() > 1 && !last.is_empty() && last.bytes().all(|b| b.is_ascii_digit()) =>
        {
            let evse = last
                .parse::<u32>()
                .map_err(|_| malformed_v201("EVSE id is too large"))?;
            c.pop();
            Some(evse)
        }
        _ => None,
    };
    let attribute = match v.last() {
        Some(last) if v.len() > 1 && ATTRIBUTES.contains(last) => {
            let attribute = (*last).to_owned();
            v.pop();
            Some(attribute)
        }
        _ => None,
    };
    if c.len() > 2 || v.len() > 2 {
        return Err(malformed_v201("too many ';' segments"));
    }
    for name in c.iter().chain(v.iter()) {
        identifier(name)?;
    }
    Ok(VariableRef {
        component: c[0].to_owned(),
        component_instance: c.get(1).map(|s| (*s).to_owned()),
        evse,
        variable: v[0].to_owned(),
        variable_instance: v.get(1).map(|s| (*s).to_owned()),
        attribute,
    })
}

fn malformed_v201(why: &str) -> SettingKeyError {
    SettingKeyError::Malformed(format!(
        "an OCPP 2.0.1 key is Component[;instance][;evse]/Variable[;instance][;attribute]: {why}"
    ))
}

/// OCPP 2.0.1 identifierString: 1 to 50 of `A-Za-z0-9*-_=:+|@.`.
fn identifier(name: &str) -> Result<(), SettingKeyError> {
    let ok = (1..=MAX_V201_NAME_CHARS).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"*-_=:+|@.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(malformed_v201(&format!(
            "{name:?} must be 1 to {MAX_V201_NAME_CHARS} of A-Z a-z 0-9 * - _ = : + | @ ."
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v201(key: &str) -> VariableRef {
        match SettingKey::parse(key, "1") {
            Ok(SettingKey::V201(v)) => v,
            other => panic!("{key}: {other:?}"),
        }
    }

    #[test]
    fn a_key_without_slash_is_v16() {
        assert_eq!(
            SettingKey::parse("HeartbeatInterval", "300"),
            Ok(SettingKey::V16("HeartbeatInterval".into()))
        );
    }

    #[test]
    fn reads_every_part_of_a_v201_key() {
        let v = v201("EVSE;main;2/Power;L1;MaxSet");
        assert_eq!(v.component, "EVSE");
        assert_eq!(v.component_instance.as_deref(), Some("main"));
        assert_eq!(v.evse, Some(2));
        assert_eq!(v.variable, "Power");
        assert_eq!(v.variable_instance.as_deref(), Some("L1"));
        assert_eq!(v.attribute.as_deref(), Some("MaxSet"));
    }

    #[test]
    fn optional_parts_may_be_left_out() {
        let v = v201("OCPPCommCtrlr/HeartbeatInterval");
        assert_eq!(
            (
                v.component_instance,
                v.evse,
                v.variable_instance,
                v.attribute
            ),
            (None, None, None, None)
        );
        assert_eq!(v201("Connector;1/Available").evse, Some(1));
        assert_eq!(
            v201("SampledDataCtrlr/TxUpdatedInterval;Target")
                .attribute
                .as_deref(),
            Some("Target")
        );
    }

    #[test]
    fn refuses_malformed_keys() {
        for bad in [
            "",
            "/Var",
            "Comp/",
            "Comp;a;b;1/Var",
            "Comp/Var;a;b",
            "Co mp/Var",
            "Comp/Va/r",
            &"x".repeat(51),
        ] {
            assert!(
                matches!(
                    SettingKey::parse(bad, "1"),
                    Err(SettingKeyError::Malformed(_))
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn value_limits_depend_on_the_version() {
        assert!(SettingKey::parse("Key", &"v".repeat(500)).is_ok());
        assert_eq!(
            SettingKey::parse("Key", &"v".repeat(501)),
            Err(SettingKeyError::ValueTooLong { len: 501, max: 500 })
        );
        assert!(SettingKey::parse("C/V", &"v".repeat(1000)).is_ok());
        assert!(SettingKey::parse("C/V", &"v".repeat(1001)).is_err());
    }
}
