//! Seed values: what a TOML value becomes for a column of a given PostgreSQL type. Values are
//! sent as text and cast by PostgreSQL; what Rust can check cheaply (the TOML type against the
//! column's type category, integer ranges, uuid syntax) is checked here, before anything runs.

use toml::de::DeValue;

/// Why a seed value cannot go into its column, said after the column's name.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ValueError {
    #[error("{0} does not fit a 64-bit integer; write it as a string")]
    IntegerTooLarge(String),
    #[error("{0} is not a 64-bit float; write it as a string")]
    NotFloat(String),
    #[error("expected {expected} for type {type_name}, found {found}")]
    Mismatch {
        expected: &'static str,
        type_name: String,
        found: &'static str,
    },
    #[error("{value} is out of range for type {type_name}")]
    OutOfRange { value: i64, type_name: String },
    #[error(
        "{0:?} is not a uuid (expected 32 hex digits, e.g. 00000000-0000-4000-8000-000000000001)"
    )]
    NotUuid(String),
    #[error("element {index}: {error}")]
    Element {
        index: usize,
        error: Box<ValueError>,
    },
}

/// A TOML value, detached from the document.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    String(String),
    Integer(i64),
    Float(f64),
    Boolean(bool),
    /// As written in the file (RFC 3339 date, time or date-time).
    Datetime(String),
    Array(Vec<Value>),
    /// An inline table or sub-table.
    Table(Vec<(String, Value)>),
}

impl Value {
    /// Takes a value out of the parsed document (strings move, nothing is copied).
    pub fn from_toml(value: DeValue<'_>) -> Result<Value, ValueError> {
        Ok(match value {
            DeValue::String(s) => Value::String(s.into_owned()),
            DeValue::Integer(i) => Value::Integer(
                i64::from_str_radix(i.as_str(), i.radix())
                    .map_err(|_| ValueError::IntegerTooLarge(i.to_string()))?,
            ),
            DeValue::Float(f) => Value::Float(
                f.as_str()
                    .parse()
                    .map_err(|_| ValueError::NotFloat(f.to_string()))?,
            ),
            DeValue::Boolean(b) => Value::Boolean(b),
            DeValue::Datetime(d) => Value::Datetime(d.to_string()),
            DeValue::Array(a) => Value::Array(
                a.into_iter()
                    .map(|v| Value::from_toml(v.into_inner()))
                    .collect::<Result<_, _>>()?,
            ),
            DeValue::Table(t) => Value::Table(
                t.into_iter()
                    .map(|(k, v)| {
                        Ok((
                            k.into_inner().into_owned(),
                            Value::from_toml(v.into_inner())?,
                        ))
                    })
                    .collect::<Result<_, ValueError>>()?,
            ),
        })
    }

    /// "a string", "an integer", ... for messages.
    pub fn describe(&self) -> &'static str {
        match self {
            Value::String(_) => "a string",
            Value::Integer(_) => "an integer",
            Value::Float(_) => "a float",
            Value::Boolean(_) => "a boolean",
            Value::Datetime(_) => "a datetime",
            Value::Array(_) => "an array",
            Value::Table(_) => "a table",
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Value::String(s) | Value::Datetime(s) => J::String(s.clone()),
            Value::Integer(i) => J::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Value::Boolean(b) => J::Bool(*b),
            Value::Array(items) => J::Array(items.iter().map(Value::to_json).collect()),
            Value::Table(entries) => J::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_json()))
                    .collect(),
            ),
        }
    }
}

/// What a column accepts, from its type in the catalog.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// json, jsonb: any TOML value, as JSON.
    Json,
    /// A PostgreSQL array of the element kind: a TOML array, or a string array literal.
    Array(Box<Kind>),
    Boolean,
    Integer {
        min: i64,
        max: i64,
    },
    /// numeric, real, double precision.
    Number,
    Uuid,
    /// date, time, timestamp(tz): a TOML datetime or a string.
    Temporal,
    /// text, varchar, char, citext.
    Text,
    /// Anything else (enums, interval, inet, ...): a string PostgreSQL parses.
    Other,
}

impl Kind {
    /// `type_name` as `format_type` writes it, `category` is `pg_type.typcategory`;
    /// `element` the same two for an array's element type.
    pub fn of(type_name: &str, category: &str, element: Option<(&str, &str)>) -> Kind {
        if category == "A" {
            let element = element.map_or(Kind::Other, |(name, cat)| Kind::of(name, cat, None));
            return Kind::Array(Box::new(element));
        }
        let bare = type_name.rsplit('.').next().unwrap_or(type_name);
        match (bare, category) {
            ("json" | "jsonb", _) => Kind::Json,
            ("uuid", _) => Kind::Uuid,
            (_, "B") => Kind::Boolean,
            ("smallint", _) => Kind::Integer {
                min: i16::MIN.into(),
                max: i16::MAX.into(),
            },
            ("integer", _) => Kind::Integer {
                min: i32::MIN.into(),
                max: i32::MAX.into(),
            },
            ("bigint", _) => Kind::Integer {
                min: i64::MIN,
                max: i64::MAX,
            },
            (_, "N") => Kind::Number,
            (_, "D") => Kind::Temporal,
            (_, "S") => Kind::Text,
            _ => Kind::Other,
        }
    }

    /// The text PostgreSQL casts to the column's type, or why the value does not fit. Takes
    /// the value: a string moves into the text unchanged.
    pub fn text(&self, type_name: &str, value: Value) -> Result<String, ValueError> {
        let found = value.describe();
        let mismatch = |expected: &'static str| {
            Err(ValueError::Mismatch {
                expected,
                type_name: type_name.to_string(),
                found,
            })
        };
        match (self, value) {
            (Kind::Json, v) => Ok(v.to_json().to_string()),
            (Kind::Array(element), Value::Array(items)) => {
                let mut out = String::new();
                array_literal(element, type_name, items, &mut out)?;
                Ok(out)
            }
            (Kind::Array(_), Value::String(s)) => Ok(s),
            (Kind::Array(_), _) => mismatch("an array"),
            (Kind::Boolean, Value::Boolean(b)) => Ok(b.to_string()),
            (Kind::Boolean, Value::String(s)) => Ok(s),
            (Kind::Boolean, _) => mismatch("a boolean"),
            (Kind::Integer { min, max }, Value::Integer(i)) => {
                if i < *min || i > *max {
                    Err(ValueError::OutOfRange {
                        value: i,
                        type_name: type_name.to_string(),
                    })
                } else {
                    Ok(i.to_string())
                }
            }
            (Kind::Integer { .. }, Value::String(s)) => Ok(s),
            (Kind::Integer { .. }, _) => mismatch("an integer"),
            (Kind::Number, Value::Integer(i)) => Ok(i.to_string()),
            (Kind::Number, Value::Float(f)) => Ok(float(f)),
            (Kind::Number, Value::String(s)) => Ok(s),
            (Kind::Number, _) => mismatch("a number"),
            (Kind::Uuid, Value::String(s)) => {
                if is_uuid(&s) {
                    Ok(s)
                } else {
                    Err(ValueError::NotUuid(s))
                }
            }
            (Kind::Uuid, _) => mismatch("a string holding a uuid"),
            (Kind::Temporal, Value::Datetime(s) | Value::String(s)) => Ok(s),
            (Kind::Temporal, _) => mismatch("a TOML date/time or a string"),
            (Kind::Text, Value::String(s)) => Ok(s),
            (Kind::Text, _) => mismatch("a string"),
            (Kind::Other, Value::String(s) | Value::Datetime(s)) => Ok(s),
            (Kind::Other, Value::Integer(i)) => Ok(i.to_string()),
            (Kind::Other, Value::Float(f)) => Ok(float(f)),
            (Kind::Other, Value::Boolean(b)) => Ok(b.to_string()),
            (Kind::Other, _) => mismatch("a string"),
        }
    }
}

/// `{"a","b"}`: every element quoted, so commas, braces and blanks inside survive.
fn array_literal(
    element: &Kind,
    type_name: &str,
    items: Vec<Value>,
    out: &mut String,
) -> Result<(), ValueError> {
    let element_type = type_name.strip_suffix("[]").unwrap_or(type_name);
    out.push('{');
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match (element, item) {
            (Kind::Json, item) => quote_element(&item.to_json().to_string(), out),
            (_, Value::Array(inner)) => array_literal(element, type_name, inner, out)?,
            (_, item) => quote_element(
                &element
                    .text(element_type, item)
                    .map_err(|e| ValueError::Element {
                        index: i + 1,
                        error: Box::new(e),
                    })?,
                out,
            ),
        }
    }
    out.push('}');
    Ok(())
}

fn quote_element(text: &str, out: &mut String) {
    out.push('"');
    for c in text.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

fn float(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else {
        f.to_string()
    }
}

/// What PostgreSQL's uuid input accepts, loosely: optional braces, hyphens anywhere, 32 hex
/// digits. PostgreSQL has the last word.
fn is_uuid(s: &str) -> bool {
    let s = s
        .strip_prefix('{')
        .and_then(|s| s.strip_suffix('}'))
        .unwrap_or(s);
    let digits = s.chars().filter(|&c| c != '-').count();
    digits == 32 && s.chars().all(|c| c == '-' || c.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Value {
        Value::String(v.into())
    }

    #[test]
    fn a_numeric_written_as_a_string_keeps_every_digit() {
        let exact = "12345678901234567.89";
        assert_eq!(
            Kind::Number
                .text("numeric", Value::String(exact.into()))
                .unwrap(),
            exact
        );
    }

    #[test]
    fn kinds_from_catalog_types() {
        assert_eq!(Kind::of("jsonb", "U", None), Kind::Json);
        assert_eq!(Kind::of("uuid", "U", None), Kind::Uuid);
        assert_eq!(Kind::of("extensions.citext", "S", None), Kind::Text);
        assert_eq!(Kind::of("numeric(4,2)", "N", None), Kind::Number);
        assert_eq!(
            Kind::of("timestamp with time zone", "D", None),
            Kind::Temporal
        );
        assert_eq!(
            Kind::of("text[]", "A", Some(("text", "S"))),
            Kind::Array(Box::new(Kind::Text))
        );
        assert!(matches!(
            Kind::of("smallint", "N", None),
            Kind::Integer { max: 32767, .. }
        ));
    }

    #[test]
    fn arrays_become_quoted_literals() {
        let kind = Kind::of("text[]", "A", Some(("text", "S")));
        let v = Value::Array(vec![s("a,b"), s("say \"hi\""), s("back\\slash")]);
        assert_eq!(
            kind.text("text[]", v).unwrap(),
            r#"{"a,b","say \"hi\"","back\\slash"}"#
        );
        assert_eq!(kind.text("text[]", Value::Array(vec![])).unwrap(), "{}");
        let ints = Kind::of("integer[]", "A", Some(("integer", "N")));
        let nested = Value::Array(vec![
            Value::Array(vec![Value::Integer(1), Value::Integer(2)]),
            Value::Array(vec![Value::Integer(3), Value::Integer(4)]),
        ]);
        assert_eq!(
            ints.text("integer[]", nested).unwrap(),
            r#"{{"1","2"},{"3","4"}}"#
        );
        let err = ints
            .text(
                "integer[]",
                Value::Array(vec![s("1"), Value::Boolean(true)]),
            )
            .unwrap_err()
            .to_string();
        assert!(err.contains("element 2"), "{err}");
    }

    #[test]
    fn json_takes_any_value() {
        let v = Value::Table(vec![
            ("tone".into(), s("gentle")),
            ("days".into(), Value::Array(vec![Value::Integer(1)])),
        ]);
        assert_eq!(
            Kind::Json.text("jsonb", v).unwrap(),
            r#"{"days":[1],"tone":"gentle"}"#
        );
        assert_eq!(
            Kind::Json.text("jsonb", Value::Array(vec![])).unwrap(),
            "[]"
        );
        assert_eq!(Kind::Json.text("jsonb", s("x")).unwrap(), r#""x""#);
    }

    #[test]
    fn mismatches_are_caught_before_the_database() {
        let int = Kind::of("integer", "N", None);
        assert!(int
            .text("integer", Value::Float(1.5))
            .unwrap_err()
            .to_string()
            .contains("expected an integer for type integer, found a float"));
        assert!(Kind::of("smallint", "N", None)
            .text("smallint", Value::Integer(40_000))
            .unwrap_err()
            .to_string()
            .contains("out of range"));
        assert!(Kind::Uuid.text("uuid", s("not-a-uuid")).is_err());
        assert!(Kind::Uuid.text("uuid", Value::Integer(7)).is_err());
        assert!(Kind::Uuid
            .text("uuid", s("00000000-0000-4000-8000-00000000c001"))
            .is_ok());
        assert!(Kind::Text.text("text", Value::Integer(1)).is_err());
        assert!(Kind::Boolean.text("boolean", Value::Integer(1)).is_err());
        assert_eq!(
            Kind::Number.text("numeric", Value::Float(0.1)).unwrap(),
            "0.1"
        );
        assert_eq!(
            Kind::Temporal
                .text("date", Value::Datetime("2024-05-01".into()))
                .unwrap(),
            "2024-05-01"
        );
    }
}
