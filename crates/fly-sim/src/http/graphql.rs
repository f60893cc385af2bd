//! `POST /graphql`: the operations fly-go/flyctl/fly-admin send for IPs, apps and
//! secrets. Operations are parsed with apollo's parser; answers are projected onto the
//! operation's selection set (aliases, fragments, `__typename`), errors in GraphQL's
//! shape with HTTP 200.

use std::collections::HashMap;

use apollo_compiler::ast::{self, Definition, Selection};
use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::{Shared, delay, json_response};
use crate::clock::{Knob, rfc3339};
use crate::world::{ApiError, World};

struct GqlError {
    message: String,
    code: &'static str,
}

impl From<ApiError> for GqlError {
    fn from(e: ApiError) -> Self {
        let code = match e.status {
            404 => "NOT_FOUND",
            403 => "UNAUTHORIZED",
            400 | 422 => "BAD_USER_INPUT",
            _ => "INTERNAL_SERVER_ERROR",
        };
        GqlError {
            message: e.message(),
            code,
        }
    }
}

fn bad(message: impl Into<String>) -> GqlError {
    GqlError {
        message: message.into(),
        code: "BAD_USER_INPUT",
    }
}

fn only_error(message: String, code: &str) -> Response {
    json_response(
        200,
        json!({"data": null, "errors": [{"message": message, "extensions": {"code": code}}]}),
    )
}

/// Converts a literal or variable to JSON.
fn value_to_json(v: &ast::Value, vars: &Map<String, Value>) -> Value {
    match v {
        ast::Value::Null => Value::Null,
        ast::Value::Enum(n) => json!(n.as_str()),
        ast::Value::Variable(n) => vars.get(n.as_str()).cloned().unwrap_or(Value::Null),
        ast::Value::String(s) => json!(s),
        ast::Value::Float(f) => f.try_to_f64().map(|f| json!(f)).unwrap_or(Value::Null),
        ast::Value::Int(i) => i
            .as_str()
            .parse::<i64>()
            .map(|i| json!(i))
            .unwrap_or(Value::Null),
        ast::Value::Boolean(b) => json!(b),
        ast::Value::List(items) => {
            Value::Array(items.iter().map(|i| value_to_json(i, vars)).collect())
        }
        ast::Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| (k.as_str().to_string(), value_to_json(v, vars)))
                .collect(),
        ),
    }
}

fn args(field: &ast::Field, vars: &Map<String, Value>) -> Map<String, Value> {
    field
        .arguments
        .iter()
        .map(|a| (a.name.as_str().to_string(), value_to_json(&a.value, vars)))
        .collect()
}

/// Keeps only what the selection asks for, under its aliases.
fn project(
    value: &Value,
    selection: &[Selection],
    fragments: &HashMap<String, &ast::FragmentDefinition>,
) -> Value {
    match value {
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|i| project(i, selection, fragments))
                .collect(),
        ),
        Value::Object(obj) => {
            let mut out = Map::new();
            project_into(obj, selection, fragments, &mut out);
            Value::Object(out)
        }
        other => other.clone(),
    }
}

fn project_into(
    obj: &Map<String, Value>,
    selection: &[Selection],
    fragments: &HashMap<String, &ast::FragmentDefinition>,
    out: &mut Map<String, Value>,
) {
    for sel in selection {
        match sel {
            Selection::Field(f) => {
                let key = f.alias.as_ref().unwrap_or(&f.name).as_str().to_string();
                let v = obj.get(f.name.as_str()).cloned().unwrap_or(Value::Null);
                let v = if f.selection_set.is_empty() {
                    v
                } else {
                    project(&v, &f.selection_set, fragments)
                };
                out.insert(key, v);
            }
            Selection::FragmentSpread(s) => {
                if let Some(def) = fragments.get(s.fragment_name.as_str()) {
                    project_into(obj, &def.selection_set, fragments, out);
                }
            }
            Selection::InlineFragment(i) => project_into(obj, &i.selection_set, fragments, out),
        }
    }
}

fn ip_json(ip: &crate::world::Ip, org: &str) -> Value {
    let mut v = crate::world::render_ip(ip);
    if let Some(obj) = v.as_object_mut() {
        obj.insert("__typename".into(), json!("IPAddress"));
        obj.insert(
            "network".into(),
            json!({"__typename": "Network", "name": "default", "organization": {"__typename": "Organization", "slug": org}}),
        );
    }
    v
}

fn org_json(w: &World) -> Value {
    json!({"__typename": "Organization", "id": w.org, "slug": w.org, "name": w.org,
           "rawSlug": w.org, "type": "PERSONAL", "viewerRole": "admin"})
}

/// The full GraphQL `App` object; projection keeps what was asked.
fn app_json(w: &World, name: &str) -> Result<Value, GqlError> {
    let a = w.app(name)?;
    let ips: Vec<Value> = a.ips.iter().map(|ip| ip_json(ip, &a.org)).collect();
    let status = if a.deleting {
        "suspended"
    } else if a.machines.values().any(|m| m.state == "started") {
        "deployed"
    } else {
        "pending"
    };
    let secrets: Vec<Value> = a
        .secrets
        .iter()
        .map(|(k, s)| json!({"__typename": "Secret", "id": k, "name": k, "digest": s.digest, "createdAt": rfc3339(s.created_at)}))
        .collect();
    Ok(json!({
        "__typename": "App",
        "id": a.name,
        "internalNumericId": a.internal_numeric_id,
        "name": a.name,
        "status": status,
        "deployed": status == "deployed",
        "hostname": format!("{}.fly.dev", a.name),
        "appUrl": format!("https://{}.fly.dev", a.name),
        "network": a.network,
        "platformVersion": "machines",
        "createdAt": rfc3339(a.created_at),
        "organization": org_json(w),
        "ipAddresses": {"__typename": "IPAddressConnection", "nodes": ips.clone(), "totalCount": ips.len(),
                        "edges": ips.iter().map(|n| json!({"node": n, "cursor": n["id"]})).collect::<Vec<_>>(),
                        "pageInfo": {"hasNextPage": false, "hasPreviousPage": false}},
        "sharedIpAddress": a.shared_ip,
        "secrets": secrets,
    }))
}

fn input(a: &Map<String, Value>) -> Result<&Map<String, Value>, GqlError> {
    a.get("input")
        .and_then(Value::as_object)
        .ok_or_else(|| bad("Variable $input of type input object was not provided"))
}

fn text<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    obj.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

pub async fn handle(State(inner): Shared, body: Bytes) -> Response {
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return json_response(
            400,
            json!({"errors": [{"message": "body must be JSON {\"query\": ..., \"variables\": ...}"}]}),
        );
    };
    let Some(query) = body.get("query").and_then(Value::as_str) else {
        return only_error("No query string was present".into(), "BAD_USER_INPUT");
    };
    let vars = body
        .get("variables")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let op_name = body
        .get("operationName")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    let doc = match ast::Document::parse(query, "query.graphql") {
        Ok(doc) => doc,
        Err(with_errors) => {
            return only_error(
                format!("syntax error: {}", with_errors.errors),
                "GRAPHQL_PARSE_FAILED",
            );
        }
    };
    let mut fragments = HashMap::new();
    let mut ops = Vec::new();
    for def in &doc.definitions {
        match def {
            Definition::OperationDefinition(op) => ops.push(op),
            Definition::FragmentDefinition(f) => {
                fragments.insert(f.name.as_str().to_string(), &**f);
            }
            _ => {}
        }
    }
    let op = match op_name {
        Some(n) => ops
            .iter()
            .find(|o| o.name.as_ref().is_some_and(|x| x.as_str() == n)),
        None if ops.len() == 1 => ops.first(),
        None => None,
    };
    let Some(op) = op else {
        return only_error(
            "Operation not found (pass operationName)".into(),
            "BAD_USER_INPUT",
        );
    };
    let is_mutation = op.operation_type == ast::OperationType::Mutation;
    let mut data = Map::new();
    let mut errors = Vec::new();
    for sel in &op.selection_set {
        let Selection::Field(field) = sel else {
            continue;
        };
        let key = field
            .alias
            .as_ref()
            .unwrap_or(&field.name)
            .as_str()
            .to_string();
        let a = args(field, &vars);
        let result = if is_mutation {
            resolve_mutation(&inner, field.name.as_str(), &a).await
        } else {
            resolve_query(&inner, field.name.as_str(), &a)
        };
        match result {
            Ok(v) => {
                let v = if field.selection_set.is_empty() {
                    v
                } else {
                    project(&v, &field.selection_set, &fragments)
                };
                data.insert(key, v);
            }
            Err(e) => {
                data.insert(key.clone(), Value::Null);
                errors.push(
                    json!({"message": e.message, "path": [key], "extensions": {"code": e.code}}),
                );
            }
        }
    }
    let mut out = json!({"data": data});
    if !errors.is_empty()
        && let Some(obj) = out.as_object_mut()
    {
        obj.insert("errors".into(), Value::Array(errors));
    }
    json_response(200, out)
}

fn resolve_query(
    inner: &crate::Inner,
    field: &str,
    a: &Map<String, Value>,
) -> Result<Value, GqlError> {
    inner.read(|w, _| match field {
        "app" => {
            let name = text(a, "name")
                .or_else(|| text(a, "id"))
                .ok_or_else(|| bad("app: argument name is required"))?;
            app_json(w, name)
        }
        "apps" => {
            let mut names: Vec<&String> = w.apps.keys().collect();
            names.sort();
            let nodes: Vec<Value> = names.iter().filter_map(|n| app_json(w, n).ok()).collect();
            Ok(json!({"nodes": nodes, "totalCount": nodes.len()}))
        }
        "organization" => {
            let slug = text(a, "slug").unwrap_or("personal");
            if w.org_matches(slug) {
                Ok(org_json(w))
            } else {
                Err(GqlError { message: format!("Could not find Organization \"{slug}\""), code: "NOT_FOUND" })
            }
        }
        "viewer" | "currentUser" => Ok(json!({"__typename": "User", "id": "sim-user", "email": format!("sim-user@{}.fly.sim", w.org), "name": "fly-sim user"})),
        "platform" => {
            let regions: Vec<Value> = crate::world::REGIONS
                .iter()
                .map(|(code, name)| json!({"code": code, "name": name, "latitude": 0.0, "longitude": 0.0,
                                          "gatewayAvailable": true, "requiresPaidPlan": false}))
                .collect();
            Ok(json!({"requestRegion": crate::world::DEFAULT_REGION, "regions": regions}))
        }
        other => Err(GqlError { message: format!("Field '{other}' doesn't exist on type 'Query' in fly-sim"), code: "undefinedField" }),
    })
}

async fn resolve_mutation(
    inner: &std::sync::Arc<crate::Inner>,
    field: &str,
    a: &Map<String, Value>,
) -> Result<Value, GqlError> {
    match field {
        "allocateIpAddress" => {
            let input = input(a)?;
            let app = text(input, "appId")
                .ok_or_else(|| bad("input.appId is required"))?
                .to_string();
            let kind = text(input, "type")
                .ok_or_else(|| bad("input.type is required (v4, v6, shared_v4, private_v6)"))?
                .to_string();
            let region = text(input, "region").map(str::to_string);
            let service = text(input, "serviceName").map(str::to_string);
            let mutation_id = input
                .get("clientMutationId")
                .cloned()
                .unwrap_or(Value::Null);
            delay(inner, Knob::IpAllocate, &app).await;
            inner.mutate(|w, clock| {
                let ip = w.allocate_ip(clock, &app, &kind, region.as_deref(), service.as_deref())?;
                let org = w.app(&app)?.org.clone();
                Ok(json!({"__typename": "AllocateIPAddressPayload", "app": app_json(w, &app)?,
                          "ipAddress": ip.map(|ip| ip_json(&ip, &org)), "clientMutationId": mutation_id}))
            })
        }
        "releaseIpAddress" => {
            let input = input(a)?;
            let app = text(input, "appId").map(str::to_string);
            let id = text(input, "ipAddressId").map(str::to_string);
            let ip = text(input, "ip").map(str::to_string);
            if id.is_none() && ip.is_none() {
                return Err(bad("input.ipAddressId or input.ip is required"));
            }
            let mutation_id = input
                .get("clientMutationId")
                .cloned()
                .unwrap_or(Value::Null);
            inner.mutate(|w, _| {
                let owner = w.release_ip(app.as_deref(), id.as_deref(), ip.as_deref())?;
                Ok(json!({"__typename": "ReleaseIPAddressPayload", "app": app_json(w, &owner)?, "clientMutationId": mutation_id}))
            })
        }
        "setSecrets" | "unsetSecrets" => {
            let input = input(a)?;
            let app = text(input, "appId")
                .ok_or_else(|| bad("input.appId is required"))?
                .to_string();
            let mutation_id = input
                .get("clientMutationId")
                .cloned()
                .unwrap_or(Value::Null);
            let (changes, replace_all) = if field == "setSecrets" {
                let list = input
                    .get("secrets")
                    .and_then(Value::as_array)
                    .ok_or_else(|| bad("input.secrets is required: [{key, value}]"))?;
                let mut changes = Vec::new();
                for s in list {
                    let key = s
                        .get("key")
                        .and_then(Value::as_str)
                        .ok_or_else(|| bad("secrets[].key is required"))?;
                    let value = s
                        .get("value")
                        .and_then(Value::as_str)
                        .ok_or_else(|| bad("secrets[].value is required"))?;
                    changes.push((key.to_string(), Some(value.to_string())));
                }
                (
                    changes,
                    input
                        .get("replaceAll")
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
                )
            } else {
                let keys = input
                    .get("keys")
                    .and_then(Value::as_array)
                    .ok_or_else(|| bad("input.keys is required"))?;
                (
                    keys.iter()
                        .filter_map(Value::as_str)
                        .map(|k| (k.to_string(), None))
                        .collect(),
                    false,
                )
            };
            inner.mutate(|w, clock| {
                w.update_secrets(clock, &app, changes, replace_all)?;
                let typename = if field == "setSecrets" { "SetSecretsPayload" } else { "UnsetSecretsPayload" };
                Ok(json!({"__typename": typename, "app": app_json(w, &app)?, "release": null, "clientMutationId": mutation_id}))
            })
        }
        other => Err(GqlError {
            message: format!("Field '{other}' doesn't exist on type 'Mutation' in fly-sim"),
            code: "undefinedField",
        }),
    }
}
