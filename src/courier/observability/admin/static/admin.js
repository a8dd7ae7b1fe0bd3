// Courier broker admin page. Every value shown comes from Kafka headers or payloads and is
// attacker-controlled: the DOM is built with createElement/textContent only, never HTML.
"use strict";

const TOKEN_KEY = "courier-admin-token";
const OVERVIEW_EVERY_MS = 2000;
const DLQ_EVERY_MS = 5000;

const state = {
  view: "overview",
  consumer: null,
  expanded: new Set(),   // DLQ positions whose details are open
  pending: null,         // the replay awaiting confirmation
  timer: null,
};

function $(id) { return document.getElementById(id); }

// el("td", {class: "num"}, "text", childNode, ...): text is always a text node.
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "onclick") node.addEventListener("click", value);
    else node.setAttribute(name, String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

function when(epochSeconds) {
  return epochSeconds ? new Date(epochSeconds * 1000).toISOString().replace(".000Z", "Z") : "";
}

function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }

function showTokenState() {
  $("token-state").textContent = token() ? "token set for this tab" : "no token: read only";
}

function showError(message) {
  const box = $("error");
  box.textContent = message || "";
  box.hidden = !message;
}

async function api(method, path, body) {
  const headers = { "Accept": "application/json" };
  if (token()) headers["Authorization"] = "Bearer " + token();
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store", credentials: "omit",
  });
  let data = null;
  try { data = await response.json(); } catch (e) { data = null; }
  if (!response.ok) {
    const reason = data && data.error ? data.error : response.statusText;
    const error = new Error(response.status + ": " + reason);
    error.status = response.status;
    throw error;
  }
  return data;
}

// -- routing ---------------------------------------------------------------------------

function route() {
  const match = /^#\/consumers\/([^/]+)\/dlq$/.exec(location.hash);
  state.view = match ? "dlq" : "overview";
  state.consumer = match ? decodeURIComponent(match[1]) : null;
  state.expanded.clear();
  hideConfirm();
  $("result").hidden = true;
  $("overview").hidden = state.view !== "overview";
  $("dlq").hidden = state.view !== "dlq";
  refresh();
}

function schedule() {
  clearTimeout(state.timer);
  state.timer = setTimeout(refresh, state.view === "dlq" ? DLQ_EVERY_MS : OVERVIEW_EVERY_MS);
}

async function refresh() {
  try {
    if (state.view === "dlq") await loadDlq();
    else await loadOverview();
    showError("");
  } catch (e) {
    showError(e.message);
  }
  schedule();
}

// -- overview --------------------------------------------------------------------------

async function loadOverview() {
  const data = await api("GET", "/api/consumers");
  const health = $("health");
  health.textContent = data.healthy ? "running" : "not healthy";
  health.className = "badge " + (data.healthy ? "ok" : "bad");
  $("updated").textContent = "updated " + when(data.generated_at);
  const body = $("consumers").tBodies[0];
  clear(body);
  const failures = [];
  for (const c of data.consumers) {
    const parts = el("td");
    for (const p of c.partitions) {
      const label = (p.kind === "retry" ? "retry " : "") + p.topic + "[" + p.partition + "]";
      const lag = p.lag === null ? "?" : p.lag;
      parts.appendChild(el("span", { class: "partition" + (p.paused ? " paused" : "") },
        label + " " + lag + " / " + p.in_flight + (p.paused ? " paused" : "")));
    }
    if (!c.partitions.length) parts.appendChild(el("span", { class: "muted" }, "none assigned"));
    const breaker = c.breaker || "unknown";
    const link = el("a", { href: "#/consumers/" + encodeURIComponent(c.name) + "/dlq",
                           class: "dlq-link" }, "browse " + c.dlq_topic);
    body.appendChild(el("tr", { "data-consumer": c.name },
      el("td", null, el("strong", null, c.name)),
      el("td", { class: "mono" }, c.target),
      el("td", null, c.topics.join(", ")),
      parts,
      el("td", { class: "num lag" }, c.lag),
      el("td", { class: "num in-flight" }, c.in_flight),
      el("td", null, el("span", { class: "badge breaker breaker-" + breaker }, breaker)),
      el("td", { class: "num" }, c.failures_total),
      el("td", null, link)));
    for (const f of c.failures) failures.push(f);
  }
  failures.sort((a, b) => b.at - a.at);
  const fbody = $("failures").tBodies[0];
  clear(fbody);
  for (const f of failures.slice(0, 30)) {
    fbody.appendChild(el("tr", { "data-event-id": f.event_id },
      el("td", null, when(f.at)), el("td", null, f.consumer), el("td", { class: "mono" }, f.event_id),
      el("td", null, f.event_type), el("td", { class: "mono" }, f.method),
      el("td", null, f.status), el("td", { class: "num" }, f.attempt), el("td", null, f.details)));
  }
  if (!failures.length) {
    fbody.appendChild(el("tr", null, el("td", { colspan: 8, class: "muted" }, "none")));
  }
}

// -- DLQ -------------------------------------------------------------------------------

function dlqQuery() {
  const params = new URLSearchParams({ limit: "200" });
  const type = $("filter-type").value.trim();
  const status = $("filter-status").value.trim();
  const error = $("filter-error").value.trim();
  if (type) params.append("type", type);
  if (status) params.append("status", status);
  if (error) params.append("error", error);
  return params;
}

async function loadDlq() {
  const name = state.consumer;
  const data = await api("GET", "/api/consumers/" + encodeURIComponent(name) + "/dlq?" + dlqQuery());
  $("dlq-consumer").textContent = data.consumer;
  $("dlq-topic").textContent = data.topic + " → replays go to " + data.retry_topic;
  $("dlq-summary").textContent = data.events.length + " shown, " + data.total + " in the topic";
  const body = $("dlq-events").tBodies[0];
  clear(body);
  for (const e of data.events) {
    const open = state.expanded.has(e.position);
    const origin = e.original_topic === null ? "" :
      e.original_topic + " " + e.original_partition + ":" + e.original_offset;
    body.appendChild(el("tr", { "data-position": e.position, "data-event-id": e.id },
      el("td", { class: "mono" }, e.position),
      el("td", { class: "mono" }, e.id),
      el("td", null, e.type),
      el("td", { class: "status" }, e.last_status),
      el("td", { class: "num" }, e.attempt),
      el("td", { class: "mono" }, e.failed_methods.join(", ")),
      el("td", null, origin),
      el("td", null, e.dead_lettered_at),
      el("td", null, e.replayed ? "yes" : ""),
      el("td", null,
        el("button", { type: "button", class: "details-toggle", onclick: () => toggle(e.position) },
           open ? "hide" : "details"),
        " ",
        el("button", { type: "button", class: "replay-one", disabled: e.problem ? "disabled" : null,
                       onclick: () => askReplay({ positions: [e.position] },
                                                "event " + (e.id || e.position)) },
           "replay"))));
    if (open) body.appendChild(details(e));
  }
  if (!data.events.length) {
    body.appendChild(el("tr", null, el("td", { colspan: 10, class: "muted" }, "no events")));
  }
}

function toggle(position) {
  if (state.expanded.has(position)) state.expanded.delete(position);
  else state.expanded.add(position);
  refresh();
}

function details(e) {
  const headers = el("table", { class: "headers" });
  for (const [name, value] of e.headers) {
    headers.appendChild(el("tr", null, el("td", null, name), el("td", null, value === null ? "" : value)));
  }
  let payload;
  if (e.payload.json !== null) {
    payload = el("pre", { class: "payload-json" }, JSON.stringify(e.payload.json, null, 2));
  } else {
    payload = el("div", null,
      el("p", { class: "muted" }, "not decoded: " + (e.payload.error || "unknown")),
      el("pre", { class: "payload-hex" }, e.payload.hex + (e.payload.truncated ? "…" : "")));
  }
  return el("tr", { class: "details", "data-details-for": e.position },
    el("td", { colspan: 10 },
      el("p", null, "last error: ", el("span", { class: "last-error" }, e.last_error || e.problem || "")),
      el("p", null, "key: ", e.key === null ? "(none)" : e.key, "  source: ", e.source || "",
         "  time: ", e.time || ""),
      el("h3", null, "headers"), headers,
      el("h3", null, "payload (" + e.payload.size + " bytes)"), payload));
}

function currentFilter() {
  const selection = {};
  const type = $("filter-type").value.trim();
  const status = $("filter-status").value.trim();
  const error = $("filter-error").value.trim();
  if (type) selection.types = [type];
  if (status) selection.statuses = [status];
  if (error) selection.error = error;
  if (!type && !status && !error) selection.all = true;
  if ($("filter-replayed").checked) selection.include_replayed = true;
  return selection;
}

// Step 1: a dry run says what would be sent; step 2 (confirm) sends exactly those records.
async function askReplay(selection, label) {
  hideConfirm();
  $("result").hidden = true;
  if (!token()) {
    showError("Enter the admin token (top right) to replay.");
    $("token").focus();
    return;
  }
  try {
    const preview = await api("POST", "/api/consumers/" + encodeURIComponent(state.consumer) +
                              "/dlq/replay", Object.assign({}, selection, { dry_run: true }));
    const events = preview.events;
    if (!events.length) {
      showResult("Nothing to replay for " + label + " (already replayed ones are skipped unless asked).");
      return;
    }
    state.pending = { positions: events.map((e) => e.position) };
    $("confirm-text").textContent = "Replay " + events.length + " event(s) (" + label + ") from " +
      preview.dlq_topic + " to " + preview.retry_topic + "? They start a fresh attempt count.";
    const list = $("confirm-list");
    clear(list);
    for (const e of events.slice(0, 50)) {
      list.appendChild(el("li", null, e.position + " " + (e.id || "") + " " + (e.type || "") +
                                      " " + (e.last_status || "")));
    }
    if (events.length > 50) list.appendChild(el("li", null, "… and " + (events.length - 50) + " more"));
    $("confirm").hidden = false;
    $("confirm-yes").focus();
  } catch (e) {
    showError(e.message);
  }
}

function hideConfirm() {
  state.pending = null;
  $("confirm").hidden = true;
}

async function confirmReplay() {
  const pending = state.pending;
  hideConfirm();
  if (!pending) return;
  try {
    const done = await api("POST", "/api/consumers/" + encodeURIComponent(state.consumer) +
                           "/dlq/replay", { positions: pending.positions });
    let text = "Replayed " + done.replayed + " of " + done.matched + " event(s) to " + done.retry_topic + ".";
    if (done.failed.length) text += " Not acknowledged by Kafka: " + done.failed.length + ".";
    showResult(text);
    refresh();
  } catch (e) {
    showError(e.message);
  }
}

function showResult(text) {
  const box = $("result");
  box.textContent = text;
  box.hidden = false;
}

// -- start -----------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  $("token-save").addEventListener("click", () => {
    const value = $("token").value.trim();
    if (value) sessionStorage.setItem(TOKEN_KEY, value);
    $("token").value = "";
    showTokenState();
    refresh();
  });
  $("token-clear").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    showTokenState();
  });
  $("filter-apply").addEventListener("click", refresh);
  $("replay-matching").addEventListener("click", () => askReplay(currentFilter(), "matching the filter"));
  $("confirm-yes").addEventListener("click", confirmReplay);
  $("confirm-no").addEventListener("click", hideConfirm);
  window.addEventListener("hashchange", route);
  showTokenState();
  route();
});
