// Rotary admin UI: plain modules, no build step. It talks to /admin/init, /admin/auth and
// /admin/api only; the admin token lives in sessionStorage (gone when the tab closes) and
// travels in the Authorization header, never in a URL.

const TOKEN_KEY = "rotary-admin-token";
const STATUS_PERIOD_MS = 2000;
const CHART_WINDOW_MS = 5 * 60 * 1000;
const COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf"];
const SVG_NS = "http://www.w3.org/2000/svg";

// Every server-API method the actions page offers, with its fields. Kinds: text (string),
// json (any JSON value), int, bool, list (one string per line or comma-separated).
const METHODS = {
  publish: {
    help: "Publish data into a channel.",
    fields: [
      { name: "channel", kind: "text", required: true },
      { name: "data", kind: "json", required: true, placeholder: '{"text": "hello"}' },
      { name: "skip_history", kind: "bool" },
      { name: "tags", kind: "json", placeholder: '{"key": "value"}' },
      { name: "idempotency_key", kind: "text" },
    ],
  },
  broadcast: {
    help: "Publish the same data into several channels.",
    fields: [
      { name: "channels", kind: "list", required: true, placeholder: "news\nchat:room" },
      { name: "data", kind: "json", required: true, placeholder: '{"text": "hello"}' },
      { name: "skip_history", kind: "bool" },
    ],
  },
  presence: { help: "Clients subscribed to a channel.", fields: [{ name: "channel", kind: "text", required: true }] },
  presence_stats: {
    help: "Numbers of clients and users in a channel.",
    fields: [{ name: "channel", kind: "text", required: true }],
  },
  history: {
    help: "Publications kept in a channel's history.",
    fields: [
      { name: "channel", kind: "text", required: true },
      { name: "limit", kind: "int", placeholder: "10" },
      { name: "reverse", kind: "bool" },
      { name: "since", kind: "json", placeholder: '{"offset": 0, "epoch": "..."}' },
    ],
  },
  history_remove: { help: "Forget a channel's history.", fields: [{ name: "channel", kind: "text", required: true }] },
  channels: { help: "Live channels and their subscriber counts.", fields: [{ name: "pattern", kind: "text", placeholder: "chat:*" }] },
  subscribe: {
    help: "Subscribe a user's connections to a channel.",
    fields: [
      { name: "user", kind: "text", required: true },
      { name: "channel", kind: "text", required: true },
      { name: "client", kind: "text" },
      { name: "info", kind: "json" },
      { name: "data", kind: "json" },
    ],
  },
  unsubscribe: {
    help: "Unsubscribe a user's connections from a channel.",
    fields: [
      { name: "user", kind: "text", required: true },
      { name: "channel", kind: "text", required: true },
      { name: "client", kind: "text" },
    ],
  },
  disconnect: {
    help: "Disconnect a user's connections (or one client).",
    fields: [
      { name: "user", kind: "text", required: true },
      { name: "client", kind: "text" },
      { name: "whitelist", kind: "list" },
      { name: "disconnect", kind: "json", placeholder: '{"code": 4000, "reason": "bye"}' },
    ],
  },
  refresh: {
    help: "Extend (or end) a user's connections.",
    fields: [
      { name: "user", kind: "text", required: true },
      { name: "client", kind: "text" },
      { name: "expired", kind: "bool" },
      { name: "expire_at", kind: "int" },
    ],
  },
  info: { help: "Every node of the cluster and its counts.", fields: [] },
  revoke_token: {
    help: "Revoke one token by its jti claim.",
    fields: [
      { name: "uid", kind: "text", required: true },
      { name: "expire_at", kind: "int" },
    ],
  },
  invalidate_user_tokens: {
    help: "Refuse every token of a user issued before a time.",
    fields: [
      { name: "user", kind: "text", required: true },
      { name: "issued_before", kind: "int" },
      { name: "expire_at", kind: "int" },
      { name: "channel", kind: "text" },
    ],
  },
};

const $ = (id) => document.getElementById(id);
const state = { insecure: false, statusTimer: 0, samples: new Map() };

class Unauthorized extends Error {}

function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

function authHeaders() {
  const t = token();
  return t ? { Authorization: `token ${t}` } : {};
}

// One server-API call through /admin/api; resolves to the result, rejects with the API's
// error message, or with Unauthorized (the UI then returns to the login page).
async function api(method, params = {}) {
  const response = await fetch("/admin/api", {
    method: "POST",
    headers: { "Content-Type": "application/json", ...authHeaders() },
    body: JSON.stringify({ method, params }),
  });
  if (response.status === 401) throw new Unauthorized("not logged in");
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  const reply = JSON.parse((await response.text()).split("\n")[0]);
  if (reply.error) throw new Error(`error ${reply.error.code}: ${reply.error.message}`);
  return reply.result ?? {};
}

function handleFailure(error, target) {
  if (error instanceof Unauthorized) {
    logout();
    return;
  }
  if (target) target.textContent = error.message;
}

// ---------------------------------------------------------------- views and routing

function showView(name) {
  for (const view of document.querySelectorAll(".view")) view.hidden = view.id !== `view-${name}`;
  for (const link of document.querySelectorAll("nav a")) {
    if (link.dataset.view === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  $("loading").hidden = true;
  const heading = document.querySelector(`#view-${name} h2`);
  if (heading && document.activeElement !== document.body) heading.focus();
}

async function route() {
  const authenticated = await checkSession();
  $("nav").hidden = !authenticated;
  $("logout").hidden = state.insecure;
  stopStatus();
  if (!authenticated) {
    showView("login");
    return;
  }
  const name = (location.hash || "#status").slice(1);
  const view = ["status", "channels", "actions"].includes(name) ? name : "status";
  showView(view);
  if (view === "status") startStatus();
  if (view === "channels") loadChannels();
}

async function checkSession() {
  const response = await fetch("/admin/init", { headers: authHeaders() });
  const init = await response.json();
  state.insecure = Boolean(init.insecure);
  return Boolean(init.authenticated);
}

async function login(event) {
  event.preventDefault();
  const form = new FormData($("login-form"));
  const response = await fetch("/admin/auth", { method: "POST", body: new URLSearchParams(form) });
  if (response.status === 429) {
    $("login-error").textContent = `Too many attempts: try again in ${response.headers.get("Retry-After")} s.`;
    return;
  }
  if (!response.ok) {
    $("login-error").textContent = "Wrong password.";
    $("password").select();
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, (await response.json()).token);
  $("login-form").reset();
  $("login-error").textContent = "";
  if (location.hash !== "#status") location.hash = "#status";
  else route();
}

function logout() {
  sessionStorage.removeItem(TOKEN_KEY);
  stopStatus();
  $("nav").hidden = true;
  showView("login");
}

// ---------------------------------------------------------------- status

function startStatus() {
  $("status-period").textContent = String(STATUS_PERIOD_MS / 1000);
  refreshStatus();
  state.statusTimer = setInterval(refreshStatus, STATUS_PERIOD_MS);
}

function stopStatus() {
  clearInterval(state.statusTimer);
  state.statusTimer = 0;
}

async function refreshStatus() {
  try {
    const { nodes = [] } = await api("info");
    nodes.sort((a, b) => String(a.name).localeCompare(String(b.name)));
    $("status-error").textContent = "";
    renderNodes(nodes);
    remember(nodes);
    renderChart(nodes);
  } catch (error) {
    handleFailure(error, $("status-error"));
  }
}

function renderNodes(nodes) {
  const rows = nodes.map((node) => {
    const row = document.createElement("tr");
    row.dataset.uid = node.uid;
    const cells = [
      ["name", node.name || node.uid],
      ["version", node.version],
      ["uptime", formatUptime(node.uptime || 0)],
      ["num_clients", node.num_clients],
      ["num_users", node.num_users],
      ["num_channels", node.num_channels],
      ["num_subs", node.num_subs],
    ];
    for (const [field, value] of cells) {
      const cell = document.createElement(field === "name" ? "th" : "td");
      if (field === "name") cell.scope = "row";
      if (field.startsWith("num_")) cell.className = "num";
      cell.dataset.field = field;
      cell.textContent = String(value ?? "");
      row.append(cell);
    }
    return row;
  });
  document.querySelector("#nodes tbody").replaceChildren(...rows);
}

function formatUptime(seconds) {
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  return h ? `${h}h ${m}m ${s}s` : m ? `${m}m ${s}s` : `${s}s`;
}

function remember(nodes) {
  const now = Date.now();
  for (const node of nodes) {
    const samples = state.samples.get(node.uid) || [];
    samples.push({ t: now, clients: Number(node.num_clients) || 0 });
    while (samples.length && samples[0].t < now - CHART_WINDOW_MS) samples.shift();
    state.samples.set(node.uid, samples);
  }
}

function svg(name, attributes, text) {
  const element = document.createElementNS(SVG_NS, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, String(value));
  if (text !== undefined) element.textContent = text;
  return element;
}

function renderChart(nodes) {
  const [width, height, left, bottom] = [600, 180, 40, 20];
  const now = Date.now();
  const series = nodes.map((node) => state.samples.get(node.uid) || []);
  const top = Math.max(1, ...series.flat().map((sample) => sample.clients));
  const x = (t) => left + ((t - (now - CHART_WINDOW_MS)) / CHART_WINDOW_MS) * (width - left - 5);
  const y = (v) => height - bottom - (v / top) * (height - bottom - 10);
  const parts = [
    svg("line", { class: "axis", x1: left, y1: y(0), x2: width - 5, y2: y(0) }),
    svg("line", { class: "axis", x1: left, y1: 10, x2: left, y2: y(0) }),
    svg("text", { x: left - 6, y: y(top) + 4, "text-anchor": "end" }, String(top)),
    svg("text", { x: left - 6, y: y(0) + 4, "text-anchor": "end" }, "0"),
    svg("text", { x: left, y: height - 4 }, "5 min ago"),
    svg("text", { x: width - 5, y: height - 4, "text-anchor": "end" }, "now"),
  ];
  series.forEach((samples, index) => {
    const points = samples.map((s) => `${x(s.t).toFixed(1)},${y(s.clients).toFixed(1)}`).join(" ");
    const colour = COLOURS[index % COLOURS.length];
    parts.push(svg("polyline", { points, fill: "none", stroke: colour, "stroke-width": 2 }));
    const last = samples[samples.length - 1];
    if (last) parts.push(svg("circle", { cx: x(last.t), cy: y(last.clients), r: 3.5, fill: colour }));
  });
  $("chart").replaceChildren(...parts);
  renderLegend(nodes);
}

function renderLegend(nodes) {
  const items = nodes.map((node, index) => {
    const item = document.createElement("li");
    const swatch = document.createElement("span");
    swatch.className = `swatch c${index % COLOURS.length}`;
    swatch.setAttribute("aria-hidden", "true");
    item.append(swatch, `${node.name || node.uid}: ${node.num_clients} clients now`);
    return item;
  });
  $("chart-legend").replaceChildren(...items);
  const total = nodes.reduce((sum, node) => sum + (Number(node.num_clients) || 0), 0);
  $("chart-summary").textContent = `${nodes.length} node(s), ${total} client(s) connected now.`;
}

// ---------------------------------------------------------------- channels

async function loadChannels(event) {
  if (event) event.preventDefault();
  try {
    const { channels = {} } = await api("channels", { pattern: $("channels-pattern").value });
    $("channels-error").textContent = "";
    const names = Object.keys(channels).sort();
    const rows = names.map((name) => channelRow(name, channels[name].num_clients));
    if (!rows.length) rows.push(emptyRow("No live channels."));
    document.querySelector("#channels-table tbody").replaceChildren(...rows);
  } catch (error) {
    handleFailure(error, $("channels-error"));
  }
}

function channelRow(name, count) {
  const row = document.createElement("tr");
  const title = document.createElement("th");
  title.scope = "row";
  title.textContent = name;
  const number = document.createElement("td");
  number.className = "num";
  number.textContent = String(count);
  const action = document.createElement("td");
  const button = document.createElement("button");
  button.type = "button";
  button.textContent = "Presence and history";
  button.setAttribute("aria-label", `Presence and history of ${name}`);
  button.addEventListener("click", () => showChannel(name));
  action.append(button);
  row.append(title, number, action);
  return row;
}

function emptyRow(text) {
  const row = document.createElement("tr");
  const cell = document.createElement("td");
  cell.colSpan = 3;
  cell.textContent = text;
  row.append(cell);
  return row;
}

async function showChannel(name) {
  $("channel-detail").hidden = false;
  $("channel-detail-title").textContent = name;
  $("channel-detail-title").focus();
  $("channel-presence").textContent = await answerText(() => api("presence", { channel: name }));
  $("channel-history").textContent = await answerText(() =>
    api("history", { channel: name, limit: 20, reverse: true }),
  );
}

async function answerText(call) {
  try {
    return JSON.stringify(await call(), null, 2);
  } catch (error) {
    if (error instanceof Unauthorized) logout();
    return error.message;
  }
}

// ---------------------------------------------------------------- actions

function buildActions() {
  const select = $("action-method");
  for (const name of Object.keys(METHODS)) select.append(new Option(name, name));
  select.addEventListener("change", () => renderFields(select.value));
  renderFields(select.value);
}

function renderFields(method) {
  const spec = METHODS[method];
  $("action-help").textContent = spec.help;
  const fields = spec.fields.map((field) => fieldElement(field));
  if (!fields.length) fields.push(Object.assign(document.createElement("p"), { textContent: "No parameters." }));
  $("action-fields").replaceChildren(...fields);
  $("action-submit").textContent = `Call ${method}`;
}

function fieldElement(field) {
  const id = `field-${field.name}`;
  const wrapper = document.createElement("div");
  const label = document.createElement("label");
  label.htmlFor = id;
  label.textContent = field.name + (field.required ? " (required)" : "");
  let input;
  if (field.kind === "bool") {
    input = Object.assign(document.createElement("input"), { type: "checkbox" });
    label.className = "check";
    label.prepend(input);
    wrapper.append(label);
  } else {
    const multiline = field.kind === "json" || field.kind === "list";
    input = document.createElement(multiline ? "textarea" : "input");
    if (field.kind === "int") Object.assign(input, { type: "number", step: 1 });
    else if (!multiline) input.type = "text";
    input.required = Boolean(field.required);
    input.placeholder = field.placeholder || "";
    wrapper.append(label, input);
    if (field.kind === "json" || field.kind === "list") wrapper.append(hint(field, id));
  }
  input.id = id;
  input.name = field.name;
  input.dataset.kind = field.kind;
  return wrapper;
}

function hint(field, id) {
  const text = document.createElement("span");
  text.className = "hint";
  text.id = `${id}-hint`;
  text.textContent = field.kind === "json" ? "A JSON value." : "One per line (or comma-separated).";
  return text;
}

// The request object from the form: empty optional fields are left out.
function paramsOf(form) {
  const params = {};
  for (const input of form.querySelectorAll("[data-kind]")) {
    const { kind } = input.dataset;
    if (kind === "bool") {
      if (input.checked) params[input.name] = true;
      continue;
    }
    const text = input.value.trim();
    if (!text) continue;
    if (kind === "int") params[input.name] = Number.parseInt(text, 10);
    else if (kind === "list") params[input.name] = text.split(/[\n,]/).map((s) => s.trim()).filter(Boolean);
    else if (kind === "json") params[input.name] = parseJson(input.name, text);
    else params[input.name] = text;
  }
  return params;
}

function parseJson(name, text) {
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`${name}: not valid JSON`);
  }
}

async function callAction(event) {
  event.preventDefault();
  const method = $("action-method").value;
  const answer = $("action-answer");
  answer.textContent = "…";
  delete answer.dataset.outcome;
  try {
    const params = paramsOf($("action-form"));
    answer.textContent = JSON.stringify(await api(method, params), null, 2);
    answer.dataset.outcome = "ok";
  } catch (error) {
    answer.dataset.outcome = "error";
    if (error instanceof Unauthorized) logout();
    else answer.textContent = error.message;
  }
}

// ---------------------------------------------------------------- start

$("login-form").addEventListener("submit", login);
$("logout").addEventListener("click", logout);
$("channels-form").addEventListener("submit", loadChannels);
$("action-form").addEventListener("submit", callAction);
window.addEventListener("hashchange", route);
buildActions();
route();
