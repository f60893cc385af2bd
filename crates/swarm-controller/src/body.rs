//! Request bodies: JSON read within a size limit, and every way a body can be wrong
//! answered in the shape of a validation error (`422` with `fields`), in words a user
//! reads: never a Rust type name (`u32`, `CreateOptions`) or a parser position.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};

use super::api_error::{ApiError, FieldError};

/// The largest request body (a create with env and metadata is a few kB).
pub(super) const MAX_BODY_BYTES: usize = 64 * 1024;

/// `Json`, with a bad body refused as our JSON error naming the field.
pub(super) struct ApiJson<T>(pub T);

impl<T: serde::de::DeserializeOwned, St: Send + Sync> FromRequest<St> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &St) -> Result<Self, ApiError> {
        if !is_json(&request) {
            return Err(not_json_content());
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "too_large",
                        format!("the body is larger than {MAX_BODY_BYTES} bytes, the most this API reads"),
                    )
                } else {
                    ApiError::new(StatusCode::BAD_REQUEST, "bad_request", rejection.body_text())
                }
            })?;
        decode(&bytes).map(Self)
    }
}

/// [`ApiJson`] for a body that may be left out entirely (no `Content-Type`, no bytes).
pub(super) struct OptionalApiJson<T>(pub Option<T>);

impl<T: serde::de::DeserializeOwned, St: Send + Sync> FromRequest<St> for OptionalApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &St) -> Result<Self, ApiError> {
        if request.headers().contains_key(header::CONTENT_TYPE) {
            return ApiJson::from_request(request, state)
                .await
                .map(|ApiJson(body)| Self(Some(body)));
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                ApiError::new(rejection.status(), "bad_request", rejection.body_text())
            })?;
        if bytes.is_empty() {
            Ok(Self(None))
        } else {
            Err(not_json_content())
        }
    }
}

fn not_json_content() -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "bad_request",
        "the body must be JSON, sent with `Content-Type: application/json`",
    )
}

/// A query string of the wrong shape (`?wait=soon`): `422` naming the parameter, as for
/// a body. axum says "Failed to deserialize query string: PATH: MESSAGE".
pub(super) fn query_error(text: &str) -> ApiError {
    let text = text
        .strip_prefix("Failed to deserialize query string: ")
        .unwrap_or(text);
    let (path, message) = match text.split_once(": ") {
        Some((path, message)) if !path.contains(' ') => (path, message),
        _ => ("", text),
    };
    let (field, rule) = explain(path, &without_position(message));
    let field = if field == "body" {
        "query".to_owned()
    } else {
        field
    };
    let mut answer = ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        format!("invalid {field}: {rule}"),
    );
    answer.body.fields.push(FieldError { field, rule });
    answer
}

fn is_json(request: &Request) -> bool {
    let Some(content_type) = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
    else {
        return false;
    };
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Parses `bytes`: not JSON at all is `400`; JSON of the wrong shape is `422`, naming
/// the field.
pub(super) fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // serde would read a struct from a list too (`[1]` as the first field): a body is
    // an object, or refused as a whole.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        if let Err(error) = serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
            return Err(not_json(&error));
        }
        let rule = "must be a JSON object".to_owned();
        let mut answer = ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            format!("invalid body: {rule}"),
        );
        answer.body.fields.push(FieldError {
            field: "body".to_owned(),
            rule,
        });
        return Err(answer);
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let error = match serde_path_to_error::deserialize(&mut deserializer) {
        Ok(value) => {
            return match deserializer.end() {
                Ok(()) => Ok(value),
                Err(trailing) => Err(not_json(&trailing)),
            };
        }
        Err(error) => error,
    };
    let inner = error.inner();
    if inner.is_syntax() || inner.is_eof() {
        return Err(not_json(inner));
    }
    let path = error.path().to_string();
    let (field, rule) = explain(&path, &without_position(&inner.to_string()));
    let mut answer = ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        format!("invalid {field}: {rule}"),
    );
    answer.body.fields.push(FieldError { field, rule });
    Err(answer)
}

fn not_json(error: &serde_json::Error) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "bad_request",
        format!(
            "the body is not valid JSON: {} (line {}, column {})",
            without_position(&error.to_string()),
            error.line(),
            error.column()
        ),
    )
}

/// serde_json ends its messages with " at line L column C".
fn without_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message.to_owned(),
    }
}

/// The field at fault and the rule it broke, from serde's message.
fn explain(path: &str, message: &str) -> (String, String) {
    let field = if path == "." || path.is_empty() {
        "body".to_owned()
    } else {
        path.to_owned()
    };
    if let Some(rest) = message.strip_prefix("unknown field ") {
        // The path already ends with the unknown key, except at the top.
        let (unknown, known) = split_expected(rest);
        let field = if field == "body" { unknown } else { field };
        return (
            field,
            format!("is not a field of this request; the fields are {known}"),
        );
    }
    if let Some(rest) = message.strip_prefix("missing field ") {
        let missing = rest.trim_matches('`').to_owned();
        let field = if field == "body" {
            missing
        } else {
            format!("{field}.{missing}")
        };
        return (field, "is required".to_owned());
    }
    if let Some(rest) = message.strip_prefix("unknown variant ") {
        let (_, known) = split_expected(rest);
        return (field, format!("must be one of {known}"));
    }
    for prefix in ["invalid type: ", "invalid value: ", "invalid length: "] {
        if let Some(rest) = message.strip_prefix(prefix) {
            let (got, expected) = rest.split_once(", expected ").unwrap_or((rest, ""));
            return (
                field,
                format!(
                    "must be {} (got {})",
                    expected_phrase(expected),
                    got_phrase(got)
                ),
            );
        }
    }
    // The query string's parser words some of its own.
    match message {
        "provided string was not `true` or `false`" => {
            return (field, "must be true or false".to_owned());
        }
        "invalid digit found in string" | "cannot parse integer from empty string" => {
            return (field, "must be a whole number from 0 up".to_owned());
        }
        "number too large to fit in target type" => {
            return (field, "is too large".to_owned());
        }
        _ => {}
    }
    // A message of our own (a `Deserialize` that validates): already in words.
    (field, message.to_owned())
}

/// "`foo`, expected one of `a`, `b`" → ("foo", "a, b").
fn split_expected(rest: &str) -> (String, String) {
    let (name, expected) = rest.split_once(", expected ").unwrap_or((rest, ""));
    let known = expected
        .trim_start_matches("one of ")
        .trim_start_matches("a field ")
        .replace('`', "");
    let known = if known.is_empty() || known == "there are no fields" {
        "none".to_owned()
    } else {
        known
    };
    (name.trim_matches('`').to_owned(), known)
}

fn expected_phrase(expected: &str) -> String {
    let whole = |max: &str| format!("a whole number from 0 to {max}");
    match expected {
        "u8" => whole("255"),
        "u16" => whole("65535"),
        "u32" => whole("4294967295"),
        "u64" | "usize" => whole("18446744073709551615"),
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number".to_owned(),
        "f32" | "f64" => "a number".to_owned(),
        "a boolean" => "true or false".to_owned(),
        "a string" | "a borrowed string" | "a character" => "a string".to_owned(),
        "a sequence" => "a list".to_owned(),
        "a map" => "an object".to_owned(),
        other if other.starts_with("struct ") || other.starts_with("a map") => {
            "an object".to_owned()
        }
        other if other.starts_with("tuple") || other.starts_with("an array") => "a list".to_owned(),
        // Never a Rust name: anything else is described by its JSON kind alone.
        _ => "a value of the documented type".to_owned(),
    }
}

fn got_phrase(got: &str) -> String {
    let quoted = |text: &str| text.trim_matches('`').to_owned();
    if let Some(value) = got.strip_prefix("integer ") {
        quoted(value)
    } else if let Some(value) = got.strip_prefix("floating point ") {
        quoted(value)
    } else if let Some(value) = got.strip_prefix("boolean ") {
        quoted(value)
    } else if got.starts_with("string ") {
        "a string".to_owned()
    } else {
        match got {
            "map" => "an object".to_owned(),
            "sequence" => "a list".to_owned(),
            "null" | "unit value" => "null".to_owned(),
            _ => "another kind of value".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarm_core::model::CreateOptions;

    fn refused(body: &str) -> ApiError {
        decode::<CreateOptions>(body.as_bytes())
            .err()
            .unwrap_or_else(|| panic!("{body} was accepted"))
    }

    #[test]
    fn a_json_type_error_names_the_field_in_words() {
        for (body, field, rule) in [
            (
                r#"{"name":"a","cpus":-1}"#,
                "cpus",
                "must be a whole number from 0 to 4294967295 (got -1)",
            ),
            (
                r#"{"name":"a","cpus":"two"}"#,
                "cpus",
                "must be a whole number from 0 to 4294967295 (got a string)",
            ),
            (r#"{"name":5}"#, "name", "must be a string (got 5)"),
            (
                r#"{"name":"a","env":{"A":1}}"#,
                "env.A",
                "must be a string (got 1)",
            ),
            (
                r#"{"name":"a","colour":"red"}"#,
                "colour",
                "is not a field of this request",
            ),
            (r#"[1]"#, "body", "must be a JSON object"),
            (r#""a""#, "body", "must be a JSON object"),
        ] {
            let error = refused(body);
            assert_eq!(error.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
            assert_eq!(error.body.code, "invalid", "{body}");
            let [named] = error.body.fields.as_slice() else {
                panic!("{body}: {:?}", error.body.fields)
            };
            assert_eq!(named.field, field, "{body}");
            assert!(named.rule.starts_with(rule), "{body}: {}", named.rule);
            for rust in ["u32", "CreateOptions", "struct", "line 1"] {
                assert!(
                    !error.body.error.contains(rust),
                    "{body}: {}",
                    error.body.error
                );
            }
        }
    }

    #[test]
    fn a_query_of_the_wrong_shape_names_the_parameter() {
        for (text, field, rule) in [
            (
                "Failed to deserialize query string: force: provided string was not `true` or `false`",
                "force",
                "must be true or false",
            ),
            (
                "Failed to deserialize query string: wait: invalid digit found in string",
                "wait",
                "must be a whole number",
            ),
            (
                "Failed to deserialize query string: unknown field `color`, expected `wait`",
                "color",
                "is not a field of this request; the fields are wait",
            ),
        ] {
            let error = query_error(text);
            assert_eq!(error.status, StatusCode::UNPROCESSABLE_ENTITY);
            assert_eq!(error.body.fields[0].field, field, "{text}");
            assert!(
                error.body.fields[0].rule.starts_with(rule),
                "{}",
                error.body.fields[0].rule
            );
        }
    }

    #[test]
    fn a_body_that_is_not_json_is_a_bad_request() {
        for body in ["{", "name=a", r#"{"name":"a"} trailing"#] {
            let error = refused(body);
            assert_eq!(error.status, StatusCode::BAD_REQUEST, "{body}");
            assert!(
                error.body.error.contains("not valid JSON"),
                "{}",
                error.body.error
            );
        }
    }
}
