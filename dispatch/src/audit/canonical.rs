//! Canonical JSON: one text for one value, whatever order its object keys came in. Objects have
//! their keys sorted by their UTF-8 bytes, nothing is indented, strings are escaped as
//! `serde_json` escapes them, integers are written in decimal.
//!
//! Fractions are refused: PostgreSQL's `jsonb` keeps a number as a decimal and may write it back
//! differently (`-0.0` becomes `0.0`), and then a stored row would no longer hash as it did when
//! it was appended. NUL characters are refused because `jsonb` cannot hold them.

use serde_json::Value;

/// Why a value has no canonical encoding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotCanonical {
    #[error("the number {0} is not an integer; audit details hold integers only")]
    Fraction(String),
    #[error("a string holds a NUL character, which PostgreSQL cannot store")]
    Nul,
}

/// The canonical text of `value`.
pub fn to_string(value: &Value) -> Result<String, NotCanonical> {
    let mut out = String::new();
    write(value, &mut out)?;
    Ok(out)
}

fn write(value: &Value, out: &mut String) -> Result<(), NotCanonical> {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) if n.is_i64() || n.is_u64() => out.push_str(&n.to_string()),
        Value::Number(n) => return Err(NotCanonical::Fraction(n.to_string())),
        Value::String(s) => write_str(s, out)?,
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(item, out)?;
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str(key, out)?;
                out.push(':');
                write(item, out)?;
            }
            out.push('}');
        }
    }
    Ok(())
}

/// A JSON string literal (also used for the row's own text fields).
pub(crate) fn write_str(s: &str, out: &mut String) -> Result<(), NotCanonical> {
    if s.contains('\0') {
        return Err(NotCanonical::Nul);
    }
    out.push_str(&serde_json::to_string(s).expect("a string always serialises"));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_are_sorted_at_every_depth_and_nothing_is_indented() {
        let v: Value =
            serde_json::from_str(r#"{"b": 1, "a": {"z": [true, null], "y": "x"}, "aa": -2}"#)
                .unwrap();
        assert_eq!(
            to_string(&v).unwrap(),
            r#"{"a":{"y":"x","z":[true,null]},"aa":-2,"b":1}"#
        );
    }

    #[test]
    fn the_same_value_built_in_another_key_order_encodes_the_same() {
        let a = json!({"from": "new", "to": "triaged", "n": 3});
        let b: Value = serde_json::from_str(r#"{"n":3,"to":"triaged","from":"new"}"#).unwrap();
        assert_eq!(to_string(&a).unwrap(), to_string(&b).unwrap());
    }

    #[test]
    fn strings_are_escaped_and_chinese_text_is_kept_as_it_is() {
        assert_eq!(
            to_string(&json!({"note": "斋堂镇 \"a\"\n\\"})).unwrap(),
            r#"{"note":"斋堂镇 \"a\"\n\\"}"#
        );
    }

    #[test]
    fn fractions_and_nul_characters_are_refused() {
        assert_eq!(
            to_string(&json!({"lat": 39.9})),
            Err(NotCanonical::Fraction("39.9".into()))
        );
        assert_eq!(to_string(&json!(["a\0b"])), Err(NotCanonical::Nul));
        assert_eq!(to_string(&json!(u64::MAX)).unwrap(), u64::MAX.to_string());
    }
}
