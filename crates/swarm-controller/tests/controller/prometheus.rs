//! A strict reader of the Prometheus text exposition format, for the tests that read
//! `/metrics`.

/// One sample of the Prometheus text format.
#[derive(Debug)]
pub(crate) struct Sample {
    pub(crate) name: String,
    labels: std::collections::BTreeMap<String, String>,
    pub(crate) value: f64,
}

/// A strict reader of the Prometheus text exposition format (0.0.4): `# HELP` and
/// `# TYPE` lines, then samples of declared metric families, label values quoted
/// and escaped, values that parse as floats; anything else fails the test.
pub(crate) fn parse_exposition(text: &str) -> Vec<Sample> {
    fn valid_name(name: &str) -> bool {
        let mut chars = name.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    }
    assert!(text.ends_with('\n'), "the text ends with a newline");
    let mut types: std::collections::BTreeMap<String, String> = Default::default();
    let mut samples = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (keyword, name, tail) = (parts.next(), parts.next(), parts.next());
            let name = name.unwrap_or_else(|| panic!("no metric name: {line:?}"));
            assert!(valid_name(name), "{line:?}");
            match keyword {
                Some("HELP") => assert!(tail.is_some_and(|t| !t.is_empty()), "{line:?}"),
                Some("TYPE") => {
                    let kind = tail.unwrap_or_default();
                    assert!(
                        ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                        "{line:?}"
                    );
                    assert!(
                        types.insert(name.to_owned(), kind.to_owned()).is_none(),
                        "TYPE given twice: {line:?}"
                    );
                }
                _ => panic!("unknown comment line {line:?}"),
            }
            continue;
        }
        assert!(!line.is_empty() && !line.starts_with('#'), "{line:?}");
        let name_end = line
            .find(['{', ' '])
            .unwrap_or_else(|| panic!("no value: {line:?}"));
        let name = &line[..name_end];
        assert!(valid_name(name), "{line:?}");
        let mut labels = std::collections::BTreeMap::new();
        let mut rest = &line[name_end..];
        if let Some(after) = rest.strip_prefix('{') {
            let mut chars = after.char_indices().peekable();
            loop {
                let (start, _) = *chars.peek().unwrap_or_else(|| panic!("{line:?}"));
                if after[start..].starts_with('}') {
                    rest = &after[start + 1..];
                    break;
                }
                let eq = after[start..]
                    .find("=\"")
                    .unwrap_or_else(|| panic!("label without =\": {line:?}"));
                let key = &after[start..start + eq];
                assert!(valid_name(key) && !key.starts_with("__"), "{line:?}");
                for _ in 0..eq + 2 {
                    chars.next();
                }
                let mut value = String::new();
                loop {
                    match chars
                        .next()
                        .unwrap_or_else(|| panic!("open quote: {line:?}"))
                    {
                        (_, '"') => break,
                        (_, '\\') => match chars.next() {
                            Some((_, '\\')) => value.push('\\'),
                            Some((_, '"')) => value.push('"'),
                            Some((_, 'n')) => value.push('\n'),
                            other => panic!("bad escape {other:?}: {line:?}"),
                        },
                        (_, c) => value.push(c),
                    }
                }
                assert!(
                    labels.insert(key.to_owned(), value).is_none(),
                    "label twice: {line:?}"
                );
                match chars.peek() {
                    Some((_, ',')) => {
                        chars.next();
                    }
                    Some((_, '}')) => {}
                    other => panic!("unexpected {other:?}: {line:?}"),
                }
            }
        }
        let value_text = rest
            .strip_prefix(' ')
            .unwrap_or_else(|| panic!("no space before the value: {line:?}"));
        assert!(
            !value_text.contains(' '),
            "timestamps are not used: {line:?}"
        );
        let value = match value_text {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            number => number
                .parse()
                .unwrap_or_else(|e| panic!("value {number:?}: {e}: {line:?}")),
        };
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| {
                name.strip_suffix(suffix)
                    .filter(|base| types.get(*base).is_some_and(|t| t == "histogram"))
            })
            .unwrap_or(name);
        assert!(
            types.contains_key(family),
            "sample before its TYPE: {line:?}"
        );
        samples.push(Sample {
            name: name.to_owned(),
            labels,
            value,
        });
    }
    samples
}

pub(crate) fn value_of(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
}
