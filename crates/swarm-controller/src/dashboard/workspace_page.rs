//! The page of one workspace: what it is, what can be done to it, and what happened.

use std::fmt::Write as _;

use super::pages::{cost, esc, field, health_cells, rfc3339, select, size};
use crate::HealthCheck;
use swarm::provider::SnapshotInfo;
use swarm_core::model::{ImageVersion, WorkspaceRecord};
use swarm_store::EventRecord;

/// The page's body (the progress section is added by the caller).
pub(super) fn render(
    record: &WorkspaceRecord,
    check: Option<&HealthCheck>,
    versions: &[ImageVersion],
    snapshots: &swarm::Result<Vec<SnapshotInfo>>,
    events: &[EventRecord],
) -> String {
    let name = esc(record.name.as_str());
    let spec = &record.spec;
    let (health, idle) = health_cells(check);
    let summary = check
        .and_then(|check| check.health.as_ref())
        .map(|health| esc(&health.summary))
        .unwrap_or_default();
    let image = record
        .image_versions
        .last()
        .map(|v| format!("v{} {}", v.version, esc(&v.image)))
        .unwrap_or_default();
    let url = esc(&record.url);
    let mut out = format!(
        "<div class=\"title\"><h1 id=\"ws-name\" data-name=\"{name}\">{name}</h1>\
<span id=\"ws-status\" class=\"state state-{status}\" role=\"status\" aria-live=\"polite\">{status}</span></div>\
<p id=\"live\" class=\"hint\" role=\"status\">Live: connecting…</p>\
<dl class=\"details\"><dt>Health</dt><dd>{health} {summary}</dd><dt>Idle since</dt><dd>{idle}</dd>\
<dt>Region</dt><dd>{region}</dd><dt>Size</dt><dd>{size}</dd><dt>Image</dt><dd>{image}</dd>\
<dt>URL</dt><dd><a href=\"{url}\" rel=\"noopener noreferrer\" target=\"_blank\">{url}</a></dd>\
<dt>Address</dt><dd>{ip}</dd><dt>Cost / month</dt><dd>{cost}</dd><dt>Owner</dt><dd>{owner}</dd>\
<dt>Created</dt><dd>{created}</dd>{error}</dl>",
        status = record.status,
        region = esc(&spec.region),
        size = size(record),
        ip = spec.ip_mode,
        cost = cost(record),
        owner = esc(spec.owner.as_deref().unwrap_or("(CLI)")),
        created = rfc3339(record.created_at),
        error = record
            .last_error
            .as_deref()
            .map(|e| format!("<dt>Last error</dt><dd>{}</dd>", esc(e)))
            .unwrap_or_default(),
    );
    out.push_str(&actions(&name, versions, snapshots));
    out.push_str("<section aria-labelledby=\"versions-h\"><h2 id=\"versions-h\">Versions</h2><div class=\"scroll\"><table><thead><tr>\
<th scope=\"col\">Version</th><th scope=\"col\">Image</th><th scope=\"col\">Digest</th></tr></thead><tbody>");
    for version in versions.iter().rev() {
        let _ = write!(
            out,
            "<tr><td data-label=\"Version\">v{}</td><td data-label=\"Image\">{}</td><td data-label=\"Digest\">{}</td></tr>",
            version.version,
            esc(&version.image),
            esc(version.digest.as_deref().unwrap_or("—"))
        );
    }
    out.push_str("</tbody></table></div></section>");
    out.push_str("<section aria-labelledby=\"snapshots-h\"><h2 id=\"snapshots-h\">Snapshots</h2>");
    match snapshots {
        Ok(list) if list.is_empty() => out.push_str("<p>No snapshots yet.</p>"),
        Ok(list) => {
            out.push_str("<div class=\"scroll\"><table><thead><tr><th scope=\"col\">Id</th><th scope=\"col\">Taken</th>\
<th scope=\"col\">Status</th></tr></thead><tbody>");
            for snapshot in list {
                let _ = write!(
                    out,
                    "<tr><td data-label=\"Id\">{}</td><td data-label=\"Taken\">{}</td><td data-label=\"Status\">{}</td></tr>",
                    esc(&snapshot.id),
                    esc(snapshot.created_at.as_deref().unwrap_or("—")),
                    esc(snapshot.status.as_deref().unwrap_or("—"))
                );
            }
            out.push_str("</tbody></table></div>");
        }
        Err(error) => {
            let _ = write!(
                out,
                "<p>Cannot list the snapshots: {}</p>",
                esc(&error.to_string())
            );
        }
    }
    out.push_str("</section><section aria-labelledby=\"events-h\"><h2 id=\"events-h\">Last events</h2>\
<div class=\"scroll\"><table id=\"events\"><thead><tr><th scope=\"col\">When</th><th scope=\"col\">Who</th>\
<th scope=\"col\">Action</th><th scope=\"col\">Outcome</th></tr></thead><tbody>");
    for event in events.iter().rev() {
        let _ = write!(
            out,
            "<tr><td data-label=\"When\">{}</td><td data-label=\"Who\">{}</td><td data-label=\"Action\">{}</td>\
<td data-label=\"Outcome\">{}</td></tr>",
            rfc3339(event.at),
            esc(&event.actor),
            esc(&event.action),
            esc(&event.outcome)
        );
    }
    out.push_str("</tbody></table></div></section>");
    out.push_str(
        "<section aria-labelledby=\"logs-h\"><h2 id=\"logs-h\">Logs</h2>\
<p class=\"hint\" id=\"logs-state\" role=\"status\">Following…</p>\
<pre id=\"logs\" tabindex=\"0\" aria-labelledby=\"logs-h\"></pre></section>",
    );
    out
}

/// Every action, each a small form the script sends to the API route of that name.
fn actions(
    name: &str,
    versions: &[ImageVersion],
    snapshots: &swarm::Result<Vec<SnapshotInfo>>,
) -> String {
    let path = format!("/v1/workspaces/{name}");
    let button = |kind: &str, label: &str, sub: &str| {
        format!(
            "<form class=\"action inline\" data-kind=\"{kind}\" data-method=\"POST\" data-path=\"{path}/{sub}\">\
<button type=\"submit\">{label}</button><p class=\"form-error\" role=\"alert\"></p></form>"
        )
    };
    let mut out = String::from(
        "<section aria-labelledby=\"actions-h\" class=\"card\"><h2 id=\"actions-h\">Actions</h2><div class=\"buttons\">",
    );
    out.push_str(&button("start", "Start", "start"));
    out.push_str(&button("stop", "Stop", "stop"));
    out.push_str(&button("snapshot", "Take a snapshot", "snapshots"));
    out.push_str(&button("password", "New password", "password"));
    out.push_str("</div><div class=\"forms\">");
    let _ = write!(
        out,
        "<form class=\"action\" data-kind=\"resize\" data-method=\"POST\" data-path=\"{path}/resize\" novalidate>\
<fieldset><legend>Resize</legend>{}{}{}{}<button type=\"submit\">Resize</button><p class=\"form-error\" role=\"alert\"></p></fieldset></form>",
        field("cpus", "CPUs", "number", "", "", false),
        select("cpu_kind", "CPU kind", &["", "shared", "performance"]),
        field("memory", "Memory (MB)", "number", "", "", false),
        field("storage", "Storage (GB)", "number", "", "", false),
    );
    let _ = write!(
        out,
        "<form class=\"action\" data-kind=\"update\" data-method=\"POST\" data-path=\"{path}/update\" novalidate>\
<fieldset><legend>Update the image</legend>{}<button type=\"submit\">Update</button><p class=\"form-error\" role=\"alert\"></p></fieldset></form>",
        field("image", "Image", "text", "", "", true),
    );
    let mut older: Vec<String> = versions
        .iter()
        .rev()
        .skip(1)
        .map(|v| v.version.to_string())
        .collect();
    older.insert(0, String::new());
    let older: Vec<&str> = older.iter().map(String::as_str).collect();
    let _ = write!(
        out,
        "<form class=\"action\" data-kind=\"rollback\" data-method=\"POST\" data-path=\"{path}/rollback\" novalidate>\
<fieldset><legend>Roll back</legend>{}<button type=\"submit\">Roll back</button><p class=\"form-error\" role=\"alert\"></p></fieldset></form>",
        select("to", "To version (default: the one before)", &older),
    );
    let ids: Vec<&str> = snapshots
        .as_ref()
        .map(|list| list.iter().map(|s| s.id.as_str()).collect())
        .unwrap_or_default();
    let _ = write!(
        out,
        "<form class=\"action\" data-kind=\"restore\" data-method=\"POST\" data-path=\"{path}/restore\" novalidate>\
<fieldset><legend>Restore a snapshot</legend>{}<button type=\"submit\">Restore</button><p class=\"form-error\" role=\"alert\"></p></fieldset></form>",
        select("snapshot", "Snapshot", &ids),
    );
    let _ = write!(
        out,
        "<form class=\"action\" data-kind=\"move\" data-method=\"POST\" data-path=\"{path}/move\" novalidate>\
<fieldset><legend>Move</legend>{}<button type=\"submit\">Move</button><p class=\"form-error\" role=\"alert\"></p></fieldset></form>",
        field("region", "To region", "text", "", "", true),
    );
    let _ = write!(
        out,
        "<form class=\"action\" data-kind=\"delete\" data-method=\"DELETE\" data-path=\"{path}\" data-confirm=\"{name}\" novalidate>\
<fieldset><legend>Delete</legend><div class=\"field\" data-field=\"confirm\"><label for=\"f-confirm\">Type <strong>{name}</strong> to confirm</label>\
<input id=\"f-confirm\" name=\"confirm\" type=\"text\" autocomplete=\"off\" aria-describedby=\"err-confirm\" data-local=\"true\">\
<p class=\"field-error\" id=\"err-confirm\"></p></div>\
<button type=\"submit\" class=\"danger\">Delete for good</button><p class=\"form-error\" role=\"alert\"></p></fieldset></form>"
    );
    out.push_str("</div><section id=\"secret\" class=\"card\" hidden aria-labelledby=\"secret-h\"><h3 id=\"secret-h\">New password</h3>\
<p>Shown this once: copy it now.</p><p><code id=\"secret-value\"></code></p></section></section>");
    out
}
