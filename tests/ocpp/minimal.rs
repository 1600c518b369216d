//! The smallest payload an official OCPP JSON schema accepts: required
//! fields only, the first enum value, minimal arrays, numbers at their
//! minimum. Lets a table-driven test send every action without writing 66
//! payloads by hand (each result is checked against its schema).

use serde_json::{json, Map, Value};
use voltgate::ocpp::schema::{check, Direction};
use voltgate::ocpp::Version;

fn schema_file(version: Version, action: &str, direction: Direction) -> Value {
    let (dir, name) = match (version, direction) {
        (Version::V16, Direction::Request) => ("v16", action.to_owned()),
        (Version::V201, Direction::Request) => ("v201", format!("{action}Request")),
        (Version::V16, Direction::Response) => ("v16", format!("{action}Response")),
        (Version::V201, Direction::Response) => ("v201", format!("{action}Response")),
    };
    let path = format!(
        "{}/schema/ocpp/{dir}/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).expect("schema is JSON")
}

fn instance(schema: &Value, root: &Value) -> Value {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let target = root
            .pointer(reference.trim_start_matches('#'))
            .unwrap_or_else(|| panic!("unresolved {reference}"));
        return instance(target, root);
    }
    if let Some(first) = schema.get("enum").and_then(|e| e.get(0)) {
        return first.clone();
    }
    match schema.get("type").and_then(Value::as_str) {
        Some("object") => {
            let mut object = Map::new();
            for name in schema["required"].as_array().into_iter().flatten() {
                let name = name.as_str().expect("field name");
                object.insert(name.to_owned(), instance(&schema["properties"][name], root));
            }
            Value::Object(object)
        }
        Some("array") => {
            let count = schema["minItems"].as_u64().unwrap_or(0);
            Value::Array(
                (0..count)
                    .map(|_| instance(&schema["items"], root))
                    .collect(),
            )
        }
        Some("string") => match schema.get("format").and_then(Value::as_str) {
            Some("date-time") => json!("2026-12-01T00:00:00Z"),
            Some("uri") => json!("https://example.com/x"),
            _ => json!("A"),
        },
        Some("integer") => json!(schema["minimum"].as_i64().unwrap_or(0)),
        Some("number") => json!(schema["minimum"].as_f64().unwrap_or(0.0)),
        Some("boolean") => json!(false),
        other => panic!("no instance for schema type {other:?}: {schema}"),
    }
}

/// The minimal valid payload of `action`'s request or response.
pub fn payload(version: Version, action: &str, direction: Direction) -> Value {
    let schema = schema_file(version, action, direction);
    let value = instance(&schema, &schema);
    assert_eq!(
        check(version, action, direction, &value),
        Ok(()),
        "minimal {action} {direction:?} is valid"
    );
    value
}
