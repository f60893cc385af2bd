//! Test support: checks JSON bodies and GraphQL operations against Fly's own published
//! spec (`machines-openapi.json`, `schema.graphql`). The files travel with the
//! repository in `spec/fly/` (their source and date in `spec/fly/SOURCES.md`), so a
//! fresh clone checks the contract with nothing beside it; `$FLY_SPEC_DIR` points at
//! another copy (a newer download, say).
//!
//! ```no_run
//! let spec = fly_spec::Spec::load();
//! let body = serde_json::json!({"name": "demo", "org_slug": "personal"});
//! spec.check_request("POST", "/v1/apps", &body).unwrap();
//! ```

use std::path::PathBuf;
use std::sync::OnceLock;

use serde_json::{Map, Value};

/// The folder holding Fly's spec files: `$FLY_SPEC_DIR`, else the repository's `spec/fly`.
pub fn spec_dir() -> PathBuf {
    match std::env::var_os("FLY_SPEC_DIR") {
        Some(dir) => PathBuf::from(dir),
        // crates/fly-spec -> repository root -> spec/fly.
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../spec/fly"),
    }
}

/// Reads one spec file; its absence is a broken checkout, never a reason to skip.
fn read_spec_file(name: &str) -> (PathBuf, String) {
    let path = spec_dir().join(name);
    match std::fs::read_to_string(&path) {
        Ok(text) => (path, text),
        Err(error) => panic!(
            "Fly's spec file {} cannot be read ({error}): it is carried in the repository's \
             spec/fly/ (or set FLY_SPEC_DIR to a folder holding it)",
            path.display()
        ),
    }
}

/// Fly's Machines OpenAPI document, ready to validate against.
#[derive(Debug)]
pub struct Spec {
    doc: Value,
    /// `components` with OpenAPI 3.0 keywords turned into JSON Schema (nullable).
    lenient: Value,
    /// The same, with `additionalProperties: false` on every object that lists its
    /// properties: catches a misspelt field that lenient validation would let through.
    strict: Value,
}

/// Which rules to validate with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The spec as published: unknown fields pass.
    Lenient,
    /// Unknown fields fail too (for bodies we write ourselves).
    Strict,
}

impl Spec {
    /// Loads the spec once per process.
    pub fn load() -> &'static Spec {
        static SPEC: OnceLock<Spec> = OnceLock::new();
        SPEC.get_or_init(|| {
            let (path, text) = read_spec_file("machines-openapi.json");
            let doc: Value = serde_json::from_str(&text)
                .unwrap_or_else(|error| panic!("{} is not JSON: {error}", path.display()));
            let components = doc.get("components").cloned().unwrap_or(Value::Null);
            let lenient = to_json_schema(&components, false);
            let strict = to_json_schema(&components, true);
            Spec {
                doc,
                lenient,
                strict,
            }
        })
    }

    /// The raw OpenAPI document.
    pub fn document(&self) -> &Value {
        &self.doc
    }

    /// Every `(METHOD, path template)` the spec defines.
    pub fn operations(&self) -> Vec<(String, String)> {
        let mut ops = Vec::new();
        if let Some(paths) = self.doc.get("paths").and_then(Value::as_object) {
            for (path, item) in paths {
                if let Some(item) = item.as_object() {
                    for method in item.keys().filter(|m| *m != "parameters") {
                        ops.push((method.to_uppercase(), path.clone()));
                    }
                }
            }
        }
        ops
    }

    /// Finds the spec's path template for a concrete path such as `/v1/apps/a/machines/1`.
    pub fn match_path(&self, method: &str, path: &str) -> Option<String> {
        let path = path.split('?').next().unwrap_or(path);
        let segs: Vec<&str> = path.trim_end_matches('/').split('/').collect();
        let method = method.to_lowercase();
        let paths = self.doc.get("paths")?.as_object()?;
        // Prefer the template with the most literal segments (`/lease` over `/{key}`).
        paths
            .iter()
            .filter(|(_, item)| item.get(&method).is_some())
            .filter_map(|(tpl, _)| {
                let tsegs: Vec<&str> = tpl.split('/').collect();
                if tsegs.len() != segs.len() {
                    return None;
                }
                let mut literals = 0;
                for (t, s) in tsegs.iter().zip(&segs) {
                    if t.starts_with('{') {
                        continue;
                    }
                    if t != s {
                        return None;
                    }
                    literals += 1;
                }
                Some((literals, tpl.clone()))
            })
            .max_by_key(|(literals, _)| *literals)
            .map(|(_, tpl)| tpl)
    }

    fn operation(&self, method: &str, path: &str) -> Result<&Value, String> {
        let tpl = self
            .match_path(method, path)
            .ok_or_else(|| format!("{method} {path}: no such operation in Fly's spec"))?;
        self.doc
            .pointer(&format!(
                "/paths/{}/{}",
                escape(&tpl),
                method.to_lowercase()
            ))
            .ok_or_else(|| format!("{method} {tpl}: no such operation"))
    }

    /// The schema of a request body, or `None` when the operation takes none.
    pub fn request_schema(&self, method: &str, path: &str) -> Result<Option<Value>, String> {
        let op = self.operation(method, path)?;
        Ok(op
            .pointer("/requestBody/content/application~1json/schema")
            .cloned())
    }

    /// The schema of a response body for `status`, `None` when the spec gives no body.
    /// A status the spec does not list for the operation is an error.
    pub fn response_schema(
        &self,
        method: &str,
        path: &str,
        status: u16,
    ) -> Result<Option<Value>, String> {
        let op = self.operation(method, path)?;
        let responses = op
            .get("responses")
            .and_then(Value::as_object)
            .ok_or_else(|| format!("{method} {path}: no responses in spec"))?;
        let resp = responses
            .get(&status.to_string())
            .or_else(|| responses.get("default"))
            .ok_or_else(|| {
                format!(
                    "{method} {path}: status {status} is not documented (spec has {:?})",
                    responses.keys().collect::<Vec<_>>()
                )
            })?;
        Ok(resp
            .get("content")
            .and_then(Value::as_object)
            .and_then(|c| c.values().next())
            .and_then(|c| c.get("schema"))
            .cloned())
    }

    /// Validates `body` against an arbitrary schema fragment (usually `{"$ref": …}`).
    pub fn validate(&self, schema: &Value, body: &Value, mode: Mode) -> Result<(), String> {
        let components = match mode {
            Mode::Lenient => &self.lenient,
            Mode::Strict => &self.strict,
        };
        let mut root = to_json_schema(schema, mode == Mode::Strict);
        if let Value::Object(map) = &mut root {
            map.insert("components".into(), components.clone());
        }
        let validator = jsonschema::draft4::new(&root).map_err(|e| format!("bad schema: {e}"))?;
        let errors: Vec<String> = validator
            .iter_errors(body)
            .map(|e| format!("at `{}`: {e}", e.instance_path()))
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{} schema violation(s):\n  {}\nbody: {body}",
                errors.len(),
                errors.join("\n  ")
            ))
        }
    }

    /// Validates a named component schema, e.g. `"Machine"`.
    pub fn validate_named(&self, name: &str, body: &Value, mode: Mode) -> Result<(), String> {
        if self
            .doc
            .pointer(&format!("/components/schemas/{}", escape(name)))
            .is_none()
        {
            return Err(format!("no schema named {name} in Fly's spec"));
        }
        let schema = serde_json::json!({"$ref": format!("#/components/schemas/{name}")});
        self.validate(&schema, body, mode)
    }

    /// A request body we send: strict, so an unknown or misspelt field fails.
    pub fn check_request(&self, method: &str, path: &str, body: &Value) -> Result<(), String> {
        match self.request_schema(method, path)? {
            Some(schema) => self
                .validate(&schema, body, Mode::Strict)
                .map_err(|e| format!("{method} {path} request: {e}")),
            None => Err(format!(
                "{method} {path}: the spec defines no request body, but one was sent: {body}"
            )),
        }
    }

    /// A response body: lenient about extra fields (Fly adds fields before documenting
    /// them), strict about types, required fields and enums.
    pub fn check_response(
        &self,
        method: &str,
        path: &str,
        status: u16,
        body: &Value,
    ) -> Result<(), String> {
        match self.response_schema(method, path, status)? {
            Some(schema) => self
                .validate(&schema, body, Mode::Lenient)
                .map_err(|e| format!("{method} {path} {status} response: {e}")),
            None => Ok(()),
        }
    }
}

fn escape(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

/// Rewrites OpenAPI 3.0 schema keywords into JSON Schema draft 4.
fn to_json_schema(v: &Value, strict: bool) -> Value {
    match v {
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, val) in map {
                if k == "example" || k.starts_with("x-") {
                    continue;
                }
                out.insert(k.clone(), to_json_schema(val, strict));
            }
            if out.remove("nullable") == Some(Value::Bool(true)) {
                match out.get_mut("type") {
                    Some(Value::String(t)) => {
                        let t = t.clone();
                        out.insert("type".into(), serde_json::json!([t, "null"]));
                    }
                    Some(Value::Array(ts)) => ts.push(Value::from("null")),
                    _ => {}
                }
            }
            if strict && out.contains_key("properties") && !out.contains_key("additionalProperties")
            {
                out.insert("additionalProperties".into(), Value::Bool(false));
            }
            Value::Object(out)
        }
        Value::Array(items) => {
            Value::Array(items.iter().map(|i| to_json_schema(i, strict)).collect())
        }
        other => other.clone(),
    }
}

/// Fly's GraphQL schema, for validating the operations a client sends.
#[derive(Debug)]
pub struct GraphqlSchema {
    schema: apollo_compiler::validation::Valid<apollo_compiler::Schema>,
}

impl GraphqlSchema {
    /// Loads `schema.graphql` once per process.
    pub fn load() -> &'static GraphqlSchema {
        static SCHEMA: OnceLock<GraphqlSchema> = OnceLock::new();
        SCHEMA.get_or_init(|| {
            let (path, text) = read_spec_file("schema.graphql");
            // Fly's schema is not fully spec-valid (it is what their server emits); parse
            // leniently and validate operations against what parsed.
            let schema = apollo_compiler::Schema::parse(&text, &path)
                .unwrap_or_else(|partial| partial.partial);
            GraphqlSchema {
                schema: apollo_compiler::validation::Valid::assume_valid(schema),
            }
        })
    }

    /// Validates an operation document (fields, arguments, variable types) against the schema.
    pub fn check_operation(&self, query: &str) -> Result<(), String> {
        apollo_compiler::ExecutableDocument::parse_and_validate(&self.schema, query, "op.graphql")
            .map(|_| ())
            .map_err(|e| {
                format!(
                    "GraphQL operation invalid against Fly's schema:\n{}",
                    e.errors
                )
            })
    }

    /// Validates a JSON response's `data` against the operation's selection: each
    /// selected field must be present with a value of the right shape.
    pub fn check_response(&self, query: &str, response: &Value) -> Result<(), String> {
        let doc = apollo_compiler::ExecutableDocument::parse_and_validate(
            &self.schema,
            query,
            "op.graphql",
        )
        .map_err(|e| format!("operation invalid: {}", e.errors))?;
        let op = doc
            .operations
            .iter()
            .next()
            .ok_or_else(|| "no operation in document".to_string())?;
        if let Some(errors) = response.get("errors") {
            let errors = errors.as_array().ok_or("`errors` must be a list")?;
            for e in errors {
                if !e.get("message").is_some_and(Value::is_string) {
                    return Err(format!("GraphQL error without a string `message`: {e}"));
                }
            }
            return Ok(());
        }
        let data = response
            .get("data")
            .ok_or("response has neither data nor errors")?;
        check_selection(&self.schema, &op.selection_set, data, "data")
    }
}

fn check_selection(
    schema: &apollo_compiler::Schema,
    set: &apollo_compiler::executable::SelectionSet,
    value: &Value,
    at: &str,
) -> Result<(), String> {
    use apollo_compiler::executable::Selection;
    if value.is_null() {
        return Ok(());
    }
    if let Value::Array(items) = value {
        for (i, item) in items.iter().enumerate() {
            check_selection(schema, set, item, &format!("{at}[{i}]"))?;
        }
        return Ok(());
    }
    let obj = value
        .as_object()
        .ok_or_else(|| format!("{at}: expected an object, got {value}"))?;
    for sel in &set.selections {
        match sel {
            Selection::Field(field) => {
                let key = field.response_key().as_str();
                let path = format!("{at}.{key}");
                let Some(v) = obj.get(key) else {
                    return Err(format!("{path}: selected field missing"));
                };
                let ty = &field.definition.ty;
                if ty.is_non_null() && v.is_null() {
                    return Err(format!("{path}: null for non-null type {ty}"));
                }
                if field.selection_set.selections.is_empty() {
                    check_scalar(schema, ty, v, &path)?;
                } else {
                    check_selection(schema, &field.selection_set, v, &path)?;
                }
            }
            Selection::InlineFragment(f) => check_selection(schema, &f.selection_set, value, at)?,
            Selection::FragmentSpread(_) => {}
        }
    }
    Ok(())
}

fn check_scalar(
    schema: &apollo_compiler::Schema,
    ty: &apollo_compiler::ast::Type,
    v: &Value,
    path: &str,
) -> Result<(), String> {
    if v.is_null() {
        return Ok(());
    }
    if ty.is_list() {
        let items = v
            .as_array()
            .ok_or_else(|| format!("{path}: expected a list"))?;
        return items
            .iter()
            .try_for_each(|i| check_scalar(schema, ty.item_type(), i, path));
    }
    let name = ty.inner_named_type().as_str();
    let ok = match name {
        "Int" => v.is_i64() || v.is_u64(),
        "Float" => v.is_number(),
        "Boolean" => v.is_boolean(),
        "String" | "ID" => v.is_string(),
        _ => match schema.types.get(name) {
            Some(apollo_compiler::schema::ExtendedType::Enum(e)) => v
                .as_str()
                .is_some_and(|s| e.values.keys().any(|k| k.as_str() == s)),
            _ => true, // custom scalars (ISO8601DateTime, JSON, …): any JSON value
        },
    };
    if ok {
        Ok(())
    } else {
        Err(format!("{path}: {v} is not a valid {name}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strict_mode_catches_a_misspelt_field_that_lenient_lets_through() {
        let spec = Spec::load();
        let body = json!({"name": "a", "org_slug": "personal", "orgslug": "x"});
        assert!(
            spec.validate_named("CreateAppRequest", &body, Mode::Lenient)
                .is_ok()
        );
        let err = spec
            .validate_named("CreateAppRequest", &body, Mode::Strict)
            .unwrap_err();
        assert!(err.contains("orgslug"), "{err}");
    }

    #[test]
    fn wrong_types_fail_even_leniently() {
        let spec = Spec::load();
        let machine = json!({"id": 5, "state": "started"});
        assert!(
            spec.validate_named("Machine", &machine, Mode::Lenient)
                .is_err()
        );
    }

    #[test]
    fn paths_match_the_most_specific_template() {
        let spec = Spec::load();
        assert_eq!(
            spec.match_path("POST", "/v1/apps/a/machines/123/lease")
                .as_deref(),
            Some("/v1/apps/{app_name}/machines/{machine_id}/lease")
        );
        assert_eq!(
            spec.match_path("GET", "/v1/apps/a/machines/123?x=1")
                .as_deref(),
            Some("/v1/apps/{app_name}/machines/{machine_id}")
        );
        assert!(spec.match_path("GET", "/v1/nope").is_none());
    }

    #[test]
    fn undocumented_status_is_an_error() {
        let spec = Spec::load();
        assert!(spec.response_schema("DELETE", "/v1/apps/a", 418).is_err());
        assert!(
            spec.response_schema("DELETE", "/v1/apps/a", 202)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn graphql_operations_are_checked_against_the_schema() {
        let schema = GraphqlSchema::load();
        let good = "mutation($input: AllocateIPAddressInput!) { allocateIpAddress(input: $input) { ipAddress { id address type region createdAt } } }";
        schema.check_operation(good).unwrap();
        let bad = "mutation($input: AllocateIPAddressInput!) { allocateIpAddress(input: $input) { ipAddress { id adress } } }";
        assert!(schema.check_operation(bad).is_err());
    }

    #[test]
    fn graphql_responses_are_checked_against_the_selection() {
        let schema = GraphqlSchema::load();
        let q = "query($n: String!) { app(name: $n) { sharedIpAddress ipAddresses { nodes { id type } } } }";
        let ok = json!({"data": {"app": {"sharedIpAddress": "1.2.3.4",
            "ipAddresses": {"nodes": [{"id": "ip_1", "type": "v6"}]}}}});
        schema.check_response(q, &ok).unwrap();
        let bad_enum = json!({"data": {"app": {"sharedIpAddress": null,
            "ipAddresses": {"nodes": [{"id": "ip_1", "type": "v5"}]}}}});
        assert!(schema.check_response(q, &bad_enum).is_err());
        let missing = json!({"data": {"app": {"ipAddresses": {"nodes": []}}}});
        assert!(schema.check_response(q, &missing).is_err());
    }
}
