//! TOML values serialized exactly as Python's `json.dumps(data, sort_keys=True,
//! separators=(",", ":"))` does (ASCII-only escapes), which is what pipenv hashes.
//! Written by hand because serde_json emits raw UTF-8 and differs in escapes.

use std::fmt::Write;

/// Serializes `value` like Python's json module with `sort_keys=True` and compact separators.
pub(crate) fn dumps(value: &toml::Value, out: &mut String) -> Result<(), &'static str> {
    match value {
        toml::Value::String(s) => string(s, out),
        toml::Value::Integer(i) => {
            let _ = write!(out, "{i}");
        }
        toml::Value::Float(f) => {
            if !f.is_finite() {
                return Err("non-finite float");
            }
            if f.fract() == 0.0 && f.abs() < 1e16 {
                let _ = write!(out, "{f:.1}");
            } else {
                let _ = write!(out, "{f}");
            }
        }
        toml::Value::Boolean(b) => out.push_str(if *b { "true" } else { "false" }),
        toml::Value::Datetime(_) => return Err("dates cannot be hashed"),
        toml::Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                dumps(item, out)?;
            }
            out.push(']');
        }
        toml::Value::Table(table) => table_to(table.iter(), out)?,
    }
    Ok(())
}

/// Serializes key/value pairs as an object with sorted keys.
pub(crate) fn table_to<'a>(
    pairs: impl Iterator<Item = (&'a String, &'a toml::Value)>,
    out: &mut String,
) -> Result<(), &'static str> {
    let mut pairs: Vec<_> = pairs.collect();
    // Python sorts str keys by code point; UTF-8 byte order is the same order.
    pairs.sort_by(|a, b| a.0.cmp(b.0));
    out.push('{');
    for (i, (k, v)) in pairs.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        string(k, out);
        out.push(':');
        dumps(v, out)?;
    }
    out.push('}');
    Ok(())
}

fn string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{u:04x}");
                }
            }
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_python_json_dumps() {
        let v: toml::Value = toml::from_str(
            "b = 1\na = [\"x\", true, 2.0]\n[c]\nz = \"é\\\"\\n😀\\u007f\"\ny = {k = \"v\"}\n",
        )
        .unwrap();
        let mut out = String::new();
        dumps(&v, &mut out).unwrap();
        // python3 -c 'import json; print(json.dumps({"b":1,"a":["x",True,2.0],"c":{"z":"é\"\n😀\x7f","y":{"k":"v"}}}, sort_keys=True, separators=(",",":")))'
        assert_eq!(
            out,
            r#"{"a":["x",true,2.0],"b":1,"c":{"y":{"k":"v"},"z":"\u00e9\"\n\ud83d\ude00\u007f"}}"#
        );
    }
}
