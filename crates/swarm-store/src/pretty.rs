//! Re-indenting compact JSON (serde_json's `to_string` output) exactly as serde_json's
//! `to_writer_pretty` prints the same value, without decoding it: `list --json` prints
//! stored records this way instead of decoding and re-encoding 10,000 of them.

/// Appends the compact JSON object `compact`, nested `depth` levels deep, pretty-printed
/// the way serde_json's `PrettyFormatter` does (two-space indent, `": "`, empty `{}` and
/// `[]` kept closed). Fails on text that is not one complete object; it does not check
/// scalars, which only serde_json's own output (or a checked record) may hold here.
pub(crate) fn push_pretty(out: &mut Vec<u8>, compact: &[u8], depth: usize) -> Result<(), String> {
    if compact.first() != Some(&b'{') {
        return Err("not a JSON object".to_owned());
    }
    let mut level = depth;
    let mut open = 0usize;
    let mut i = 0;
    // Runs of bytes copied as they are (scalars, string contents) go out in one copy.
    let mut run = 0;
    while i < compact.len() {
        let byte = compact[i];
        match byte {
            b'"' => {
                i += 1;
                loop {
                    match compact.get(i) {
                        Some(b'"') => break,
                        Some(b'\\') => i += 2,
                        Some(_) => i += 1,
                        None => return Err("unterminated string".to_owned()),
                    }
                }
                i += 1;
                continue;
            }
            b'{' | b'[' => {
                out.extend_from_slice(&compact[run..=i]);
                let close = if byte == b'{' { b'}' } else { b']' };
                if compact.get(i + 1) == Some(&close) {
                    out.push(close);
                    i += 1;
                } else {
                    open += 1;
                    level += 1;
                    newline(out, level);
                }
            }
            b'}' | b']' => {
                out.extend_from_slice(&compact[run..i]);
                open = open
                    .checked_sub(1)
                    .ok_or_else(|| "unbalanced brackets".to_owned())?;
                level -= 1;
                newline(out, level);
                out.push(byte);
            }
            b',' => {
                out.extend_from_slice(&compact[run..=i]);
                newline(out, level);
            }
            b':' => {
                out.extend_from_slice(&compact[run..i]);
                out.extend_from_slice(b": ");
            }
            _ => {
                i += 1;
                continue;
            }
        }
        i += 1;
        run = i;
        if open == 0 {
            break;
        }
    }
    if open != 0 || i < compact.len() {
        return Err(if open == 0 {
            "text after the object".to_owned()
        } else {
            "truncated object".to_owned()
        });
    }
    Ok(())
}

fn newline(out: &mut Vec<u8>, level: usize) {
    out.push(b'\n');
    for _ in 0..level {
        out.extend_from_slice(b"  ");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pretty(compact: &str, depth: usize) -> Result<String, String> {
        let mut out = Vec::new();
        push_pretty(&mut out, compact.as_bytes(), depth)?;
        Ok(String::from_utf8(out).expect("utf-8"))
    }

    #[test]
    fn matches_serde_json_pretty() {
        let value = serde_json::json!({
            "a": [],
            "b": {},
            "c": [1, -2.5e10, true, null, {"d": "x,y:{}[]\"\\"}],
            "e": {"f": [[]], "g": "\u{1}é😀"},
            "h": ""
        });
        let compact = serde_json::to_string(&value).expect("json");
        assert_eq!(
            pretty(&compact, 0).expect("pretty"),
            serde_json::to_string_pretty(&value).expect("json")
        );
        // Nested one level deep, as an element of the list's array.
        let inner = pretty(&compact, 1).expect("pretty");
        assert_eq!(
            format!("[\n  {inner}\n]"),
            serde_json::to_string_pretty(&[&value]).expect("json")
        );
    }

    #[test]
    fn refuses_what_is_not_one_object() {
        for bad in [
            "",
            "[]",
            "{\"a\":1",
            "{\"a\":\"1}",
            "{}\n{}",
            "{\"a\":1}}",
            "{}x",
        ] {
            assert!(pretty(bad, 0).is_err(), "{bad:?}");
        }
    }
}
