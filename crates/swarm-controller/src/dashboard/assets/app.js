// The dashboard's script: sends the forms to the API (as the signed-in session),
// shows the server's messages beside the fields, follows operations, the list and
// the logs as server-sent events. No framework, no build step.
"use strict";

const csrf = document.querySelector('meta[name="csrf-token"]')?.content || "";
const page = document.body.dataset.page;

async function api(method, path, body) {
  const init = { method, credentials: "same-origin", headers: { "x-csrf-token": csrf } };
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch("/ui/api" + path, init);
  let json = null;
  try { json = await response.json(); } catch (_) { json = { error: "the server answered " + response.status }; }
  return { status: response.status, json };
}

function text(element, value) { if (element) element.textContent = value; }

function clearErrors(form) {
  form.querySelectorAll(".field-error, .form-error").forEach((e) => (e.textContent = ""));
  form.querySelectorAll("[aria-invalid]").forEach((e) => e.removeAttribute("aria-invalid"));
}

// The server's refusal: its message, and each field's rule beside that field.
function showError(form, error) {
  const messages = [];
  for (const field of error.fields || []) {
    const box = form.querySelector('[data-field="' + field.field + '"]');
    if (box) {
      text(box.querySelector(".field-error"), field.rule);
      box.querySelector("input, select, textarea")?.setAttribute("aria-invalid", "true");
    } else {
      messages.push(field.field + ": " + field.rule);
    }
  }
  text(form.querySelector(".form-error"), [error.error || "refused"].concat(messages).join(" "));
  form.querySelector('[aria-invalid="true"]')?.focus();
}

function body(form) {
  const out = {};
  for (const input of form.querySelectorAll("input[name], select[name], textarea[name]")) {
    if (input.dataset.local || input.type === "hidden") continue;
    const value = input.value.trim();
    if (value === "") continue;
    if (input.name === "env") {
      out.env = {};
      for (const line of value.split("\n")) {
        const at = line.indexOf("=");
        if (line.trim() === "") continue;
        if (at < 0) out.env[line.trim()] = "";
        else out.env[line.slice(0, at).trim()] = line.slice(at + 1);
      }
    } else if (input.type === "number" || input.name === "to") {
      out[input.name] = Number(value);
    } else {
      out[input.name] = value;
    }
  }
  return out;
}

async function submit(form) {
  clearErrors(form);
  const confirmName = form.dataset.confirm;
  if (confirmName !== undefined && form.querySelector('[name="confirm"]').value !== confirmName) {
    const box = form.querySelector('[data-field="confirm"]');
    text(box.querySelector(".field-error"), "type the workspace's name exactly to delete it");
    box.querySelector("input").setAttribute("aria-invalid", "true");
    box.querySelector("input").focus();
    return;
  }
  const method = form.dataset.method;
  const sendsBody = method === "POST" && form.querySelector("input[name], select[name], textarea[name]");
  const button = form.querySelector('button[type="submit"]');
  button.disabled = true;
  try {
    const { status, json } = await api(method, form.dataset.path, sendsBody ? body(form) : undefined);
    if (status >= 400) {
      showError(form, json);
      return;
    }
    follow(json, form);
  } finally {
    button.disabled = false;
  }
}

// A long operation: its steps as they happen, then its end as the API tells it.
function follow(operation, form) {
  const section = document.getElementById("progress");
  const steps = document.getElementById("steps");
  const outcome = document.getElementById("outcome");
  section.hidden = false;
  steps.replaceChildren();
  text(outcome, operation.kind + " of " + operation.workspace + ": running…");
  section.dataset.status = "running";
  section.dataset.operation = operation.id;
  const source = new EventSource("/ui/operations/" + encodeURIComponent(operation.id) + "/steps");
  const finish = async (wait) => {
    source.close();
    const { status, json } = await api("GET", "/v1/operations/" + encodeURIComponent(operation.id) + wait);
    if (status >= 400 || json.status === "running") {
      text(outcome, operation.kind + ": " + (json.error || "still running; reload to see its end"));
      return;
    }
    section.dataset.status = json.status;
    if (json.status === "succeeded") {
      text(outcome, json.kind + " of " + json.workspace + ": done.");
      const password = json.result && json.result.password;
      if (typeof password === "string") {
        const secret = (form && form.parentElement.querySelector("#secret")) || document.getElementById("secret");
        text(secret.querySelector("#secret-value"), password);
        secret.hidden = false;
      }
      if (json.kind === "delete" && page === "workspace") {
        outcome.append(" ");
        const back = document.createElement("a");
        back.href = "/";
        back.textContent = "Back to the workspaces";
        outcome.append(back);
      }
    } else {
      text(outcome, json.kind + " of " + json.workspace + " failed: " + (json.error ? json.error.error : "unknown error"));
      if (form && json.error) showError(form, json.error);
    }
  };
  source.addEventListener("step", (event) => {
    const step = JSON.parse(event.data);
    const item = document.createElement("li");
    item.textContent = step.step.replaceAll("_", " ");
    steps.append(item);
  });
  source.addEventListener("done", () => finish(""));
  source.onerror = () => finish("?wait=60");
}

document.querySelectorAll("form.action").forEach((form) =>
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submit(form);
  }),
);

// The list and a workspace's state follow the server's changes.
function live() {
  const status = document.getElementById("live");
  if (!status) return;
  const source = new EventSource("/ui/events");
  source.addEventListener("ready", () => { text(status, "Live: connected"); status.dataset.live = "true"; });
  source.onerror = () => { text(status, "Live: reconnecting…"); status.dataset.live = "false"; };
  source.addEventListener("resync", () => location.reload());
  source.addEventListener("workspace", (event) => {
    const change = JSON.parse(event.data);
    if (page === "list") listChange(change);
    else if (page === "workspace") workspaceChange(change);
  });
}

function listChange(change) {
  const table = document.getElementById("workspaces");
  const row = document.getElementById("ws-" + change.name);
  const count = (by) => {
    const caption = table.caption;
    const n = (parseInt(caption.textContent, 10) || 0) + by;
    caption.textContent = n + (n === 1 ? " workspace" : " workspaces");
  };
  if (change.gone) {
    if (row) { row.remove(); count(-1); }
    return;
  }
  if (!row) count(1);
  const template = document.createElement("template");
  template.innerHTML = change.row;
  const fresh = template.content.firstElementChild;
  if (row) row.replaceWith(fresh);
  else if (table.dataset.lastPage === "true") {
    table.tBodies[0].append(fresh);
    document.getElementById("empty")?.remove();
  }
}

function workspaceChange(change) {
  const name = document.getElementById("ws-name").dataset.name;
  if (change.name !== name) return;
  const badge = document.getElementById("ws-status");
  const state = change.gone ? "deleted" : change.status;
  badge.textContent = state;
  badge.className = "state state-" + state;
}

async function logs() {
  const pre = document.getElementById("logs");
  if (!pre) return;
  const name = document.getElementById("ws-name").dataset.name;
  const state = document.getElementById("logs-state");
  const add = (line) => {
    pre.append((line.timestamp || "") + " " + line.message + "\n");
    pre.scrollTop = pre.scrollHeight;
  };
  const path = "/v1/workspaces/" + encodeURIComponent(name);
  const { status, json } = await api("GET", path + "/logs?lines=100");
  if (status < 400 && Array.isArray(json)) json.forEach(add);
  else text(state, "Cannot read the logs: " + (json.error || status));
  const source = new EventSource("/ui/api" + path + "/logs/stream");
  source.addEventListener("open", () => text(state, "Following."));
  source.addEventListener("log", (event) => add(JSON.parse(event.data)));
  source.addEventListener("error", (event) => { if (event.data) text(state, event.data); });
}

document.querySelector('a[href="#new"]')?.addEventListener("click", () => { document.getElementById("new").open = true; });
live();
logs();
